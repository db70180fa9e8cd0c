//go:build e2enode

package e2enode

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

const (
	releaseNamespace = "kompress-system"
	jobNamespace     = "ml-team"
	secretName       = "kompress-s3"
	// missingImages is the Custom stage allowlist: a registry on the
	// gateway where nothing listens, so a pull fails as it would for a
	// missing image.
	missingImages = gatewayIP + ":5999/missing/"
	// sampleTarget is the target from kubectl apply to Ready with
	// real containers on a warm cache.
	sampleTarget = 90 * time.Second
	// imagePullStallAfter is the chart's stages.imagePullStallAfter here.
	imagePullStallAfter = 20 * time.Second
)

var installOnce sync.Once
var installErr error

// install runs the README's quick start, once: every command of its
// shell blocks, in order, as a cluster admin would (see quickStart).
func install(t *testing.T) {
	t.Helper()
	installOnce.Do(func() { installErr = runQuickStart() })
	if installErr != nil {
		t.Fatal(installErr)
	}
}

// quickStart extracts the ```sh blocks of the README's "### Quick start"
// section (up to the next heading), in order: the commands the test runs
// are the ones users read.
func quickStart() (string, error) {
	b, err := os.ReadFile(filepath.Join(nd.repo, "README.md"))
	if err != nil {
		return "", err
	}
	var script strings.Builder
	in, fence, blocks := false, "", 0
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case fence == "" && line == "### Quick start":
			in = true
		case fence == "" && in && (strings.HasPrefix(line, "# ") || strings.HasPrefix(line, "## ") || strings.HasPrefix(line, "### ")):
			in = false
		case fence == "" && strings.HasPrefix(line, "```"):
			fence = line
			if in && line == "```sh" {
				blocks++
			}
		case fence != "" && line == "```":
			fence = ""
		case in && fence == "```sh":
			script.WriteString(line + "\n")
		}
	}
	if fence != "" {
		return "", fmt.Errorf("README.md: an unclosed %s block", fence)
	}
	if blocks < 3 {
		return "", fmt.Errorf("README.md's ### Quick start has %d ```sh blocks, want the whole install", blocks)
	}
	return script.String(), nil
}

// runQuickStart runs the quick start in the checkout with what a user
// sets: KUBECONFIG, the bucket's endpoint and credentials. The images are
// already on the node (ctr images import, as the README says for nodes
// without a registry). One thing this node lacks is kube-proxy, so
// `helm install` gets the settings of node-values.yaml on top
// (the API server's address, a short image-pull bound, Custom stages from
// a registry that does not answer) through a helm wrapper on the PATH.
func runQuickStart() error {
	script, err := quickStart()
	if err != nil {
		return err
	}
	bin := filepath.Join(nd.dir, "quickstart-bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	values := filepath.Join(nd.dir, "node-values.yaml")
	if err := os.WriteFile(values, []byte(fmt.Sprintf(`# make e2e-node's node, on top of the README's helm install.
extraEnv:
- {name: KUBERNETES_SERVICE_HOST, value: %q}
- {name: KUBERNETES_SERVICE_PORT, value: %q}
logLevel: debug
stages:
  imagePullStallAfter: %s
customStages:
  enabled: true
  images: [%q]
`, gatewayIP, nd.apiPort, imagePullStallAfter, missingImages)), 0o644); err != nil {
		return err
	}
	wrapper := fmt.Sprintf(`#!/bin/sh
case "$1" in
install|upgrade) exec %q "$@" -f %q ;;
*) exec %q "$@" ;;
esac
`, os.Getenv("HELM"), values, os.Getenv("HELM"))
	if err := os.WriteFile(filepath.Join(bin, "helm"), []byte(wrapper), 0o755); err != nil {
		return err
	}
	home := filepath.Join(nd.dir, "quickstart-home")
	cmd := exec.Command("bash", "-euo", "pipefail", "-x", "-c", script)
	cmd.Dir = nd.repo
	cmd.Env = append(os.Environ(),
		"PATH="+bin+":"+os.Getenv("PATH"), "KUBECONFIG="+nd.kubeconfig, "S3_ENDPOINT="+nd.proxy.Endpoint,
		"AWS_ACCESS_KEY_ID="+storagetest.AccessKey, "AWS_SECRET_ACCESS_KEY="+storagetest.SecretKey,
		"HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.CombinedOutput()
	quickStartLog = string(out)
	if err != nil {
		return fmt.Errorf("the README's quick start failed: %v\n%s\n%s", err, out, diag())
	}
	return nil
}

// quickStartLog is what the quick start printed.
var quickStartLog string

// endpointed points every s3:// URI of a manifest at the S3 proxy on the
// gateway.
func endpointed(t *testing.T, data []byte) []byte {
	t.Helper()
	out, err := nd.proxy.Manifest(data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func kubectlApply(t *testing.T, ns string, data []byte) {
	t.Helper()
	cmd := exec.Command("kubectl", "apply", "--kubeconfig", nd.kubeconfig, "-n", ns, "-f", "-")
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

func getCPJ(t *testing.T, name string) *v1alpha1.CompressionJob {
	t.Helper()
	cpj := &v1alpha1.CompressionJob{}
	if err := nd.client.Get(context.Background(), client.ObjectKey{Namespace: jobNamespace, Name: name}, cpj); err != nil {
		t.Fatal(err)
	}
	return cpj
}

// waitCPJ polls the CompressionJob until cond holds.
func waitCPJ(t *testing.T, name string, timeout time.Duration, what string, cond func(*v1alpha1.CompressionJob) bool) *v1alpha1.CompressionJob {
	t.Helper()
	var last *v1alpha1.CompressionJob
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		cpj := &v1alpha1.CompressionJob{}
		if err := nd.client.Get(ctx, client.ObjectKey{Namespace: jobNamespace, Name: name}, cpj); err != nil {
			return false, nil
		}
		last = cpj
		return cpj.Status.ObservedGeneration == cpj.Generation && cond(cpj), nil
	})
	if err != nil {
		t.Fatalf("%s: no %s within %s; last status %s\n%s", name, what, timeout, summary(last), podDiag(t))
	}
	return last
}

func summary(cpj *v1alpha1.CompressionJob) string {
	if cpj == nil {
		return "none"
	}
	b, _ := json.Marshal(cpj.Status)
	return string(b)
}

func podDiag(t *testing.T) string { return diag() }

// diag describes every pod, and the events of kompress-system and the job
// namespace, for a failure message.
func diag() string {
	var evs corev1.EventList
	_ = nd.client.List(context.Background(), &evs)
	var e strings.Builder
	for _, ev := range evs.Items {
		if ev.Type == corev1.EventTypeWarning || ev.Namespace == releaseNamespace {
			fmt.Fprintf(&e, "event %s/%s %s %s: %s\n", ev.Namespace, ev.InvolvedObject.Name, ev.Type, ev.Reason, ev.Message)
		}
	}
	return pods() + e.String()
}

func pods() string {
	var pods corev1.PodList
	_ = nd.client.List(context.Background(), &pods)
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s/%s on %q: %s", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, " [%s %s", cs.Name, cs.ImageID)
			if cs.State.Waiting != nil {
				fmt.Fprintf(&b, " waiting %s %q", cs.State.Waiting.Reason, cs.State.Waiting.Message)
			}
			if cs.State.Terminated != nil {
				fmt.Fprintf(&b, " exit %d %.200q", cs.State.Terminated.ExitCode, cs.State.Terminated.Message)
			}
			b.WriteString("]")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func ready(cpj *v1alpha1.CompressionJob) bool {
	return meta.IsStatusConditionTrue(cpj.Status.Conditions, v1alpha1.ConditionReady)
}

// criContainer is what crictl ps -o json reports of a container.
type criContainer struct {
	ID       string `json:"id"`
	ImageRef string `json:"imageRef"`
	State    string `json:"state"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Labels map[string]string `json:"labels"`
}

func criContainers(t *testing.T) []criContainer {
	t.Helper()
	out, err := nd.crictl("ps", "-a", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Containers []criContainer }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	return list.Containers
}

// The sample from config/samples, applied with kubectl to a namespace
// enforcing Pod Security restricted: both stages run as containers of the
// runner image (containerd says so), it becomes Ready within the target,
// and the model in the bucket is the one status reports.
func TestSampleOnRealNode(t *testing.T) {
	install(t)
	cpj := getCPJ(t, "mnist-prune-int8")
	if !ready(cpj) {
		t.Fatalf("the quick start's kubectl wait passed, but the sample is not Ready: %s", summary(cpj))
	}
	elapsed := cpj.Status.CompletionTime.Sub(cpj.CreationTimestamp.Time)
	t.Logf("TARGET sample apply -> Ready with real containers: %s (target %s)", elapsed, sampleTarget)
	if elapsed > sampleTarget {
		t.Errorf("the sample took %s from kubectl apply to Ready, over the %s target", elapsed, sampleTarget)
	}
	for _, want := range []string{"condition met", "mnist-prune-int8", "copied config/samples/models/mnist-8.onnx"} {
		if !strings.Contains(quickStartLog, want) {
			t.Errorf("the quick start printed no %q:\n%s", want, quickStartLog)
		}
	}
	out := cpj.Status.Output
	u, err := url.Parse(out.URI)
	if err != nil {
		t.Fatal(err)
	}
	model, err := nd.s3.Object(bucket, strings.TrimPrefix(u.Path, "/"))
	if err != nil {
		t.Fatalf("the reported model %s is not in the bucket: %v", out.URI, err)
	}
	sum := sha256.Sum256(model)
	if d := "sha256:" + hex.EncodeToString(sum[:]); d != out.Digest || int64(len(model)) != out.SizeBytes {
		t.Errorf("the bucket holds %d bytes with digest %s, status reports %d and %s", len(model), d, out.SizeBytes, out.Digest)
	}

	// Every stage ran as a container of the runner image, by digest.
	runner := nd.images["runner"]
	var pods corev1.PodList
	if err := nd.client.List(context.Background(), &pods, client.InNamespace(jobNamespace), client.MatchingLabels{controllers.LabelJob: "mnist-prune-int8"}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Errorf("%d stage pods, want 2", len(pods.Items))
	}
	uids := map[string]bool{}
	for _, p := range pods.Items {
		uids[string(p.UID)] = true
		if p.Spec.NodeName != nodeName || p.Status.Phase != corev1.PodSucceeded {
			t.Errorf("pod %s on %q is %s", p.Name, p.Spec.NodeName, p.Status.Phase)
		}
		for _, cs := range p.Status.ContainerStatuses {
			// The kubelet reports the image's name and, as its ID, the
			// repository@digest containerd ran.
			if cs.ImageID != runner.ref() || p.Spec.Containers[0].Image != runner.ref() {
				t.Errorf("pod %s container %s: image %s, ID %s; want %s", p.Name, cs.Name, p.Spec.Containers[0].Image, cs.ImageID, runner.ref())
			}
		}
	}
	ran := 0
	for _, c := range criContainers(t) {
		if uids[c.Labels["io.kubernetes.pod.uid"]] && c.Metadata.Name == controllers.ContainerName {
			ran++
			// containerd names an image by its config's digest.
			if c.State != "CONTAINER_EXITED" || c.ImageRef != runner.ConfigDigest {
				t.Errorf("containerd container %s: state %s image %s", c.ID, c.State, c.ImageRef)
			}
		}
	}
	if ran != 2 {
		t.Errorf("containerd ran %d runner containers of the sample's pods, want 2", ran)
	}
	t.Logf("final model %s: %d bytes, %s", out.URI, out.SizeBytes, out.Digest)
}

// Pod Security restricted is enforced on the job namespace by the API
// server itself: the stage pods above passed it, and a pod that asks for
// less (no runAsNonRoot, privilege escalation) is refused.
func TestRestrictedIsEnforced(t *testing.T) {
	install(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "loose", Namespace: jobNamespace},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: nd.images["runner"].ref()}}},
	}
	err := nd.client.Create(context.Background(), pod)
	if err == nil || !strings.Contains(err.Error(), "violates PodSecurity \"restricted") {
		t.Fatalf("creating a pod without a restricted security context in %s: %v, want a PodSecurity refusal", jobNamespace, err)
	}
}

// A stage container killed with SIGKILL while it uploads its model is
// retried by its Job; nothing is visible at the artifact's key while the
// upload hangs or after the kill, and the retry publishes the model.
func TestStageKilledMidUpload(t *testing.T) {
	install(t)
	const name = "killed"
	prefix := "out/" + name + "/"
	hold := nd.proxy.HoldUploads(func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/"+prefix) && strings.HasSuffix(r.URL.Path, "/"+pipeline.ModelFile)
	})
	defer hold.Release(nd.proxy)
	job := fmt.Sprintf(`apiVersion: kompress.dev/v1alpha1
kind: CompressionJob
metadata: {name: %s}
spec:
  source: {uri: "s3://%s/mnist/mnist-8.onnx"}
  output: {uri: "s3://%s/%s"}
  dataset: {uri: "s3://%s/mnist/mnist-test.npz"}
  storage: {secretRef: {name: %s}}
  evaluation: {latencyRuns: 5}
  stages:
  - name: int8
    type: Quantize
    quantize: {method: dynamic}
`, name, bucket, bucket, strings.TrimSuffix(prefix, "/"), bucket, secretName)
	kubectlApply(t, jobNamespace, endpointed(t, []byte(job)))
	select {
	case <-hold.Held():
	case <-time.After(120 * time.Second):
		t.Fatalf("the runner never uploaded its model\n%s", podDiag(t))
	}
	if keys := keysUnder(t, prefix); len(keys) != 0 {
		t.Fatalf("objects visible while the model upload is in flight: %v", keys)
	}
	var pods corev1.PodList
	if err := nd.client.List(context.Background(), &pods, client.InNamespace(jobNamespace), client.MatchingLabels{controllers.LabelJob: name}); err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods of %s: %d (%v)", name, len(pods.Items), err)
	}
	uid := string(pods.Items[0].UID)
	pid := 0
	for _, c := range criContainers(t) {
		if c.Labels["io.kubernetes.pod.uid"] == uid && c.State == "CONTAINER_RUNNING" {
			out, err := nd.crictl("inspect", c.ID)
			if err != nil {
				t.Fatal(err)
			}
			var info struct {
				Info struct{ Pid int } `json:"info"`
			}
			if err := json.Unmarshal([]byte(out), &info); err != nil {
				t.Fatal(err)
			}
			pid = info.Info.Pid
		}
	}
	if pid <= 1 {
		t.Fatalf("no running container of pod %s in containerd", pods.Items[0].Name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	time.Sleep(time.Second)
	if keys := keysUnder(t, prefix); len(keys) != 0 {
		t.Fatalf("objects visible after the container died mid-upload: %v", keys)
	}
	hold.Release(nd.proxy)
	cpj := waitCPJ(t, name, 180*time.Second, "Ready", ready)
	if a := cpj.Status.Stages[0].Attempts; a != 2 {
		t.Errorf("stage attempts = %d, want 2 (the killed container's pod and its retry)", a)
	}
	if keys := keysUnder(t, prefix); len(keys) == 0 {
		t.Error("nothing published after the retry")
	}
}

func keysUnder(t *testing.T, prefix string) []string {
	t.Helper()
	all, err := nd.s3.Keys(bucket)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range all {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	return keys
}

// A stage whose image cannot be pulled shows the kubelet's message in
// status while the kubelet backs off, and the CompressionJob is Stalled
// (kstatus Failed) once stages.imagePullStallAfter has passed.
func TestImagePullFailureSurfaces(t *testing.T) {
	install(t)
	const name = "missing-image"
	job := fmt.Sprintf(`apiVersion: kompress.dev/v1alpha1
kind: CompressionJob
metadata: {name: %s}
spec:
  source: {uri: "s3://%s/mnist/mnist-8.onnx"}
  output: {uri: "s3://%s/out/%s"}
  storage: {secretRef: {name: %s}}
  stages:
  - name: mine
    type: Custom
    custom: {image: "%sstage:v1", command: [/stage]}
`, name, bucket, bucket, name, secretName, missingImages)
	start := time.Now()
	kubectlApply(t, jobNamespace, endpointed(t, []byte(job)))
	cpj := waitCPJ(t, name, 90*time.Second, "image pull failure in status", func(c *v1alpha1.CompressionJob) bool {
		return len(c.Status.Stages) > 0 && (c.Status.Stages[0].Reason == "ErrImagePull" || c.Status.Stages[0].Reason == "ImagePullBackOff")
	})
	s := cpj.Status.Stages[0]
	if !strings.Contains(s.Message, missingImages) {
		t.Errorf("stage message %q does not carry the kubelet's message about %s", s.Message, missingImages)
	}
	t.Logf("stage %s: %s: %s", s.Name, s.Reason, s.Message)
	if meta.IsStatusConditionTrue(cpj.Status.Conditions, v1alpha1.ConditionStalled) && time.Since(start) < imagePullStallAfter {
		t.Errorf("Stalled after %s, before the %s bound", time.Since(start), imagePullStallAfter)
	}
	cpj = waitCPJ(t, name, imagePullStallAfter+60*time.Second, "Stalled", func(c *v1alpha1.CompressionJob) bool {
		return meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionStalled)
	})
	stalled := meta.FindStatusCondition(cpj.Status.Conditions, v1alpha1.ConditionStalled)
	t.Logf("Stalled after %s: %s: %s", time.Since(start).Round(time.Second), stalled.Reason, stalled.Message)
	if !strings.Contains(stalled.Message, missingImages) || !strings.Contains(stalled.Reason, "Image") {
		t.Errorf("Stalled %s %q does not carry the kubelet's pull failure", stalled.Reason, stalled.Message)
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cpj)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := kstatus.Compute(&unstructured.Unstructured{Object: u}); err != nil || res.Status != kstatus.FailedStatus {
		t.Errorf("kstatus %v (%v), want Failed", res, err)
	}
}
