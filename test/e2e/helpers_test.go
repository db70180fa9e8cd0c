//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/runner/storage/storagetest"
	"github.com/kompress/kompress/test/e2e/nodeagent"
)

// Where the sample expects its inputs in the bucket.
const (
	sampleModelKey   = "mnist/mnist-8.onnx"
	sampleDatasetKey = "mnist/mnist-test.npz"
)

// s3URI is an s3:// URI of key in the bucket, through the proxy.
func s3URI(key string) string {
	return "s3://" + bucket + "/" + key + "?" + s3Query()
}

func s3Query() string {
	return "endpoint=" + url.QueryEscape(cl.proxy.Endpoint) + "&use_path_style=true&region=" + storagetest.Region
}

// bucketKey is the key an s3:// URI of the test bucket names.
func bucketKey(t *testing.T, uri string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "s3" || u.Host != bucket {
		t.Fatalf("%q is not an s3://%s/ URI", uri, bucket)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// viaEndpoint points an s3:// URI at another endpoint.
func viaEndpoint(t *testing.T, uri, endpoint string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("endpoint", endpoint)
	u.RawQuery = q.Encode()
	return u.String()
}

// renderManifest points every s3:// URI of a manifest at the test's S3
// endpoint (keeping bucket, key and region): what a user edits in a sample
// before applying it to their cluster.
func renderManifest(t *testing.T, data []byte) []byte {
	t.Helper()
	out, err := cl.proxy.Manifest(data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// manifest renders a CompressionJob as YAML.
func manifest(t *testing.T, cpj *v1alpha1.CompressionJob) []byte {
	t.Helper()
	cpj = cpj.DeepCopy()
	cpj.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "CompressionJob"}
	b, err := yaml.Marshal(cpj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// apply runs `kubectl apply -f -` with the manifest, as a user or a GitOps
// tool would; without kubectl on the machine it applies server-side
// through the API.
func apply(t *testing.T, namespace string, data []byte) {
	t.Helper()
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		cmd := exec.Command(kubectl, "apply", "--kubeconfig", cl.cp.Kubeconfig, "-n", namespace, "-f", "-")
		cmd.Stdin = bytes.NewReader(data)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kubectl apply: %v\n%s\nmanifest:\n%s", err, out, data)
		}
		return
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(namespace)
	u.SetManagedFields(nil)
	if err := cl.client.Patch(context.Background(), u, client.Apply, client.FieldOwner("kubectl"), client.ForceOwnership); err != nil {
		t.Fatalf("server-side apply: %v\nmanifest:\n%s", err, data)
	}
}

// quantizeJob is a one-stage static int8 job on the sample's model and
// data, whose stages land on the general pool.
func quantizeJob(ns, name string) *v1alpha1.CompressionJob {
	return &v1alpha1.CompressionJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.CompressionJobSpec{
			Source:  v1alpha1.ModelSource{URI: s3URI(sampleModelKey)},
			Output:  v1alpha1.OutputSpec{URI: s3URI("out/" + ns + "/" + name)},
			Dataset: &v1alpha1.DatasetSpec{URI: s3URI(sampleDatasetKey)},
			Storage: &v1alpha1.StorageSpec{SecretRef: &corev1.LocalObjectReference{Name: secretName}},
			Scheduling: &v1alpha1.SchedulingSpec{
				NodeSelector: map[string]string{"pool": "general"},
			},
			Evaluation: v1alpha1.EvaluationSpec{LatencyRuns: 5},
			Stages: []v1alpha1.Stage{{
				Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize,
					Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic,
						Calibration: v1alpha1.Calibration{Method: v1alpha1.CalibrationMinMax, Samples: 64}}},
			}},
		},
	}
}

// observation is one version of a CompressionJob seen by a watch.
type observation struct {
	At     time.Time
	Object *v1alpha1.CompressionJob
	// Raw is the object as the API server sent it.
	Raw     *unstructured.Unstructured
	Kstatus kstatus.Status
	Message string
	Health  string
}

// recorder watches one CompressionJob for the whole test and checks every
// version it sees: kstatus and the Argo CD health check must agree with the
// conditions (InProgress while work is pending or running, Current when
// Ready, Failed when Stalled).
type recorder struct {
	key    types.NamespacedName
	mu     sync.Mutex
	obs    []observation
	bad    []string
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func record(t *testing.T, ns, name string) *recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{key: types.NamespacedName{Namespace: ns, Name: name}, wake: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go r.watch(ctx)
	t.Cleanup(func() {
		r.stop()
		for _, b := range r.problems() {
			t.Error(b)
		}
	})
	return r
}

func (r *recorder) stop() {
	r.cancel()
	<-r.done
}

func (r *recorder) watch(ctx context.Context) {
	defer close(r.done)
	rv := ""
	for ctx.Err() == nil {
		// Unstructured, as kubectl, Flux and Argo CD read it: a typed
		// object would drop zero values such as observedGeneration 0.
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("CompressionJobList"))
		w, err := cl.client.Watch(ctx, list, client.InNamespace(r.key.Namespace),
			client.MatchingFields{"metadata.name": r.key.Name}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}})
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			rv = u.GetResourceVersion()
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				r.add(u.DeepCopy())
			}
		}
		w.Stop()
	}
}

func (r *recorder) add(u *unstructured.Unstructured) {
	cpj := &v1alpha1.CompressionJob{}
	problem := ""
	if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(u.Object, cpj); err != nil {
		problem = "decoding: " + err.Error()
	}
	o := observation{At: time.Now(), Object: cpj, Raw: u}
	res, err := kstatus.Compute(u)
	if err != nil {
		problem += " kstatus: " + err.Error()
	} else {
		o.Kstatus, o.Message = res.Status, res.Message
		if want := expectedKstatus(cpj); o.Kstatus != want {
			problem += fmt.Sprintf(" kstatus says %s (%q), want %s", o.Kstatus, o.Message, want)
		}
	}
	if cpj.DeletionTimestamp == nil {
		h, msg, err := argoHealth(u.Object)
		o.Health = h
		if err != nil {
			problem += " Argo CD health check: " + err.Error()
		} else if want := expectedHealth(cpj); h != want {
			problem += fmt.Sprintf(" Argo CD health says %s (%q), want %s", h, msg, want)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, o)
	if problem != "" {
		r.bad = append(r.bad, fmt.Sprintf("%s generation %d, status %s:%s", r.key, cpj.Generation, conditionSummary(cpj), problem))
	}
	close(r.wake)
	r.wake = make(chan struct{})
}

func (r *recorder) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// all returns every observation so far.
func (r *recorder) all() []observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]observation(nil), r.obs...)
}

// waitFor waits until a version satisfies cond and returns it.
func (r *recorder) waitFor(t *testing.T, timeout time.Duration, what string, cond func(*v1alpha1.CompressionJob) bool) observation {
	t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		r.mu.Lock()
		obs, wake := r.obs[seen:], r.wake
		r.mu.Unlock()
		for _, o := range obs {
			seen++
			if cond(o.Object) {
				return o
			}
		}
		select {
		case <-wake:
		case <-deadline:
			last := "nothing"
			if all := r.all(); len(all) > 0 {
				last = conditionSummary(all[len(all)-1].Object) + " stages " + stageSummary(all[len(all)-1].Object)
			}
			t.Fatalf("%s: no %s within %s; last seen: %s\n%s", r.key, what, timeout, last, cl.diagnose(r.key.Namespace))
		}
	}
}

// kstatuses lists the distinct kstatus values seen, in order.
func (r *recorder) kstatuses() []kstatus.Status {
	var out []kstatus.Status
	for _, o := range r.all() {
		if len(out) == 0 || out[len(out)-1] != o.Kstatus {
			out = append(out, o.Kstatus)
		}
	}
	return out
}

// expectedKstatus is what kstatus must compute from the controller's
// conditions: the controller's Reconciling and Stalled must carry the
// polarity kstatus reads.
func expectedKstatus(cpj *v1alpha1.CompressionJob) kstatus.Status {
	switch {
	case cpj.DeletionTimestamp != nil:
		return kstatus.TerminatingStatus
	case cpj.Status.ObservedGeneration != cpj.Generation:
		return kstatus.InProgressStatus
	case meta.IsStatusConditionTrue(cpj.Status.Conditions, v1alpha1.ConditionStalled):
		return kstatus.FailedStatus
	case meta.IsStatusConditionTrue(cpj.Status.Conditions, v1alpha1.ConditionReady),
		meta.IsStatusConditionTrue(cpj.Status.Conditions, v1alpha1.ConditionSuspended):
		return kstatus.CurrentStatus
	}
	return kstatus.InProgressStatus
}

// expectedHealth is the Argo CD health the Lua check must compute.
func expectedHealth(cpj *v1alpha1.CompressionJob) string {
	switch {
	case cpj.Status.ObservedGeneration != cpj.Generation:
		return "Progressing"
	case meta.IsStatusConditionTrue(cpj.Status.Conditions, v1alpha1.ConditionStalled):
		return "Degraded"
	case meta.IsStatusConditionTrue(cpj.Status.Conditions, v1alpha1.ConditionSuspended):
		return "Suspended"
	case meta.IsStatusConditionTrue(cpj.Status.Conditions, v1alpha1.ConditionReady):
		return "Healthy"
	}
	return "Progressing"
}

func toUnstructured(cpj *v1alpha1.CompressionJob) *unstructured.Unstructured {
	cpj = cpj.DeepCopy()
	cpj.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "CompressionJob"}
	obj, err := k8sruntime.DefaultUnstructuredConverter.ToUnstructured(cpj)
	if err != nil {
		panic(err)
	}
	return &unstructured.Unstructured{Object: obj}
}

func conditionSummary(cpj *v1alpha1.CompressionJob) string {
	var parts []string
	for _, c := range cpj.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	return fmt.Sprintf("observedGeneration=%d [%s]", cpj.Status.ObservedGeneration, strings.Join(parts, " "))
}

func stageSummary(cpj *v1alpha1.CompressionJob) string {
	var parts []string
	for _, s := range cpj.Status.Stages {
		parts = append(parts, fmt.Sprintf("%s=%s/%s(%s)", s.Name, s.State, s.Reason, s.Message))
	}
	return strings.Join(parts, " ")
}

func ready(cpj *v1alpha1.CompressionJob) bool {
	return cpj.Status.ObservedGeneration == cpj.Generation && meta.IsStatusConditionTrue(cpj.Status.Conditions, v1alpha1.ConditionReady)
}

func stalled(cpj *v1alpha1.CompressionJob) bool {
	return cpj.Status.ObservedGeneration == cpj.Generation && meta.IsStatusConditionTrue(cpj.Status.Conditions, v1alpha1.ConditionStalled)
}

// saveFixture writes the object as a test fixture for the Argo CD health
// check when KOMPRESS_E2E_FIXTURES names a folder (see testdata/README.md).
func saveFixture(t *testing.T, name string, o observation) {
	t.Helper()
	dir := os.Getenv("KOMPRESS_E2E_FIXTURES")
	if dir == "" {
		return
	}
	u := o.Raw.DeepCopy()
	u.SetManagedFields(nil)
	b, err := json.MarshalIndent(u.Object, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// jobsOf lists the CompressionJob's stage Jobs.
func jobsOf(t *testing.T, ns, name string) []batchv1.Job {
	t.Helper()
	var jobs batchv1.JobList
	if err := cl.client.List(context.Background(), &jobs, client.InNamespace(ns), client.MatchingLabels{controllers.LabelJob: name}); err != nil {
		t.Fatal(err)
	}
	return jobs.Items
}

// podsOf lists the pods of the CompressionJob's stage Jobs.
func podsOf(t *testing.T, ns, name string) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := cl.client.List(context.Background(), &pods, client.InNamespace(ns), client.MatchingLabels{controllers.LabelJob: name}); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// events lists the events about a CompressionJob.
func events(t *testing.T, ns, name string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := cl.client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "CompressionJob" && e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for an event about the CompressionJob with reason and a
// note containing text.
func waitEvent(t *testing.T, ns, name, reason, text string, timeout time.Duration) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		for _, e := range events(t, ns, name) {
			if e.Reason == reason && strings.Contains(e.Note, text) {
				found = e
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		var list eventsv1.EventList
		_ = cl.client.List(context.Background(), &list, client.InNamespace(ns))
		var seen []string
		for _, e := range list.Items {
			seen = append(seen, fmt.Sprintf("%s/%s %s: %s", e.Regarding.Kind, e.Regarding.Name, e.Reason, e.Note))
		}
		t.Fatalf("no event %s %q about %s/%s in %s; events in %s:\n%s", reason, text, ns, name, timeout, ns, strings.Join(seen, "\n"))
	}
	return found
}

// eventually polls cond for up to timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, seen := cond()
		last = seen
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s (last: %s)", what, timeout, last)
	}
}

// diagnose describes a namespace's Jobs and pods for a failure message.
func (c *cluster) diagnose(ns string) string {
	var b strings.Builder
	var jobs batchv1.JobList
	_ = c.client.List(context.Background(), &jobs, client.InNamespace(ns))
	for _, j := range jobs.Items {
		fmt.Fprintf(&b, "Job %s: active=%d succeeded=%d failed=%d conditions=%v\n", j.Name, j.Status.Active, j.Status.Succeeded, j.Status.Failed, jobConditions(&j))
	}
	var pods corev1.PodList
	_ = c.client.List(context.Background(), &pods, client.InNamespace(ns))
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s on %q: %s", p.Name, p.Spec.NodeName, p.Status.Phase)
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated != nil {
				fmt.Fprintf(&b, " exit %d %s %.300q", cs.State.Terminated.ExitCode, cs.State.Terminated.Reason, cs.State.Terminated.Message)
			}
			if cs.State.Waiting != nil {
				fmt.Fprintf(&b, " waiting %s %q", cs.State.Waiting.Reason, cs.State.Waiting.Message)
			}
		}
		b.WriteString("\n")
		if log := c.agent.Log(p.Namespace, p.Name, controllers.ContainerName); log != "" {
			lines := strings.Split(strings.TrimSpace(log), "\n")
			if len(lines) > 8 {
				lines = lines[len(lines)-8:]
			}
			fmt.Fprintf(&b, "  log: %s\n", strings.Join(lines, "\n  log: "))
		}
	}
	return b.String()
}

func jobConditions(j *batchv1.Job) []string {
	var out []string
	for _, c := range j.Status.Conditions {
		out = append(out, fmt.Sprintf("%s=%s(%s)", c.Type, c.Status, c.Reason))
	}
	return out
}

// startsIn lists the runner processes the node agent started in a namespace.
func startsIn(ns string) []nodeagent.Start {
	var out []nodeagent.Start
	for _, s := range cl.agent.Started() {
		if s.Namespace == ns {
			out = append(out, s)
		}
	}
	return out
}

// fileSHA256 is the sha256 (hex) of a file of the repository, for
// spec.source.sha256 and spec.dataset.sha256.
func fileSHA256(t *testing.T, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cl.repo, rel))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
