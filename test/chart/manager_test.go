package chart

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kompressv1alpha1 "github.com/kompress/kompress/api/v1alpha1"
)

// leaseName is cmd/manager's LeaderElectionID.
const leaseName = "kompress-manager.kompress.dev"

// stagePod is what the chart's values decide about a stage Job's pod.
type stagePod struct {
	Image          string
	PullPolicy     corev1.PullPolicy
	ServiceAccount string
	Resources      map[string]string
	// TmpSizeLimit bounds the pod's /tmp: the ephemeral-storage limit.
	TmpSizeLimit string
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
}

// The real manager, started with exactly the args and the identity the chart
// gives it, becomes leader, serves probes and metrics, and turns a
// CompressionJob into a stage Job carrying the chart's stage defaults.
func TestManagerRunsWithChartValues(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/manager and needs kube-apiserver and etcd; run without -short")
	}
	manager := buildManager(t)
	t.Run("chart covers every manager flag", func(t *testing.T) {
		if diff := cmp.Diff(allManagerFlags, managerFlags(t, manager)); diff != "" {
			t.Errorf("flags of cmd/manager the chart should render (-chart +manager):\n%s", diff)
		}
	})
	for _, tc := range []struct {
		name                  string
		values                []string
		managerAccount        string
		leaseNamespace, jobNS string
		want                  stagePod
	}{{
		name:           "default values",
		managerAccount: "kompress-controller-manager",
		leaseNamespace: "kompress-system",
		jobNS:          "kompress-system",
		want: stagePod{
			Image:          "ghcr.io/kompress/kompress-runner:v0.1.0",
			PullPolicy:     corev1.PullIfNotPresent,
			ServiceAccount: "kompress-runner",
			// No CPU limit although the manager's own default has one.
			Resources: map[string]string{"requests.cpu": "1", "requests.memory": "1Gi", "limits.memory": "2Gi",
				"requests.ephemeral-storage": "256Mi", "limits.ephemeral-storage": "8Gi"},
			TmpSizeLimit: "8Gi",
		},
	}, {
		name:           "every option set",
		values:         []string{"-f", allValues},
		managerAccount: "kompress-mgr",
		leaseNamespace: "kompress-leases",
		jobNS:          "ml-team",
		want: stagePod{
			Image:          "registry.example.com/kompress/runner:v9.9.8",
			PullPolicy:     corev1.PullNever,
			ServiceAccount: "compress-runner",
			Resources: map[string]string{
				"requests.cpu": "2", "requests.memory": "3Gi", "requests.ephemeral-storage": "1Gi",
				"limits.cpu": "4500m", "limits.memory": "8589934592", "limits.ephemeral-storage": "20Gi",
			},
			TmpSizeLimit: "20Gi",
			NodeSelector: map[string]string{"pool": "edge", "kubernetes.io/arch": "arm64"},
			Tolerations: []corev1.Toleration{
				{Key: "pool", Operator: corev1.TolerationOpEqual, Value: "edge", Effect: corev1.TaintEffectNoSchedule},
				{Key: "example.com/spot", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptrInt64(600)},
			},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cp := startControlPlane(t)
			for _, ns := range []string{"ml-team", "vision", "kompress-leases"} {
				if err := cp.client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
					t.Fatal(err)
				}
			}
			metricsPort, healthPort := freePort(t), freePort(t)
			h := newHelm(t)
			args := append([]string{"install", "kompress", chartDir(t), "--namespace", "kompress-system", "--create-namespace",
				"--kubeconfig", cp.kubeconfig}, tc.values...)
			h.mustRun(t, append(args, "--set", fmt.Sprintf("metrics.port=%d,health.port=%d", metricsPort, healthPort))...)
			live := cp.releaseObjects(t, h).onlyDeployment(t)
			var d appsv1.Deployment
			cp.mustGet(t, live.Namespace, live.Name, &d)

			logs := startManager(t, manager, managerArgs(t, &d), cp.serviceAccountKubeconfig(t, "kompress-system", tc.managerAccount))
			waitHTTP(t, logs, fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort), "")
			if slices.Contains(managerArgs(t, &d), "--metrics-secure=true") {
				cp.checkSecureMetrics(t, logs, metricsPort)
			} else {
				waitHTTP(t, logs, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort), "controller_runtime_")
			}
			cp.waitLeader(t, logs, tc.leaseNamespace)

			cpj := &kompressv1alpha1.CompressionJob{
				ObjectMeta: metav1.ObjectMeta{Name: "chart-defaults", Namespace: tc.jobNS},
				Spec: kompressv1alpha1.CompressionJobSpec{
					Source: kompressv1alpha1.ModelSource{URI: "s3://models/mnist-8.onnx"},
					Output: kompressv1alpha1.OutputSpec{URI: "s3://models/compressed"},
					Stages: []kompressv1alpha1.Stage{{
						Name: "int8", StageBody: kompressv1alpha1.StageBody{Type: kompressv1alpha1.StageTypeQuantize,
							Quantize: &kompressv1alpha1.QuantizeSpec{Method: kompressv1alpha1.QuantizeDynamic}},
					}},
				},
			}
			if err := cp.client.Create(t.Context(), cpj); err != nil {
				t.Fatal(err)
			}
			job := cp.waitOwnedJob(t, logs, cpj)
			if diff := cmp.Diff(tc.want, summarizeStagePod(t, job)); diff != "" {
				t.Errorf("stage Job %s pod (-want +got):\n%s", job.Name, diff)
			}
		})
	}
}

func ptrInt64(v int64) *int64 { return &v }

// buildManager compiles cmd/manager as its image does (CGO off).
func buildManager(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "manager")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/manager")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/manager: %v\n%s", err, out)
	}
	return bin
}

// managerFlags lists the flags `manager -h` prints, but for the
// kubeconfig (in-cluster config in a pod) and zap's encoding options (left at
// their defaults; --zap-log-level is rendered).
func managerFlags(t *testing.T, bin string) []string {
	t.Helper()
	out, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits non-zero on some Go versions
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "  -") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "  -"), " ")
		if name == "kubeconfig" || (strings.HasPrefix(name, "zap-") && name != "zap-log-level" && name != "zap-encoder") {
			continue
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		t.Fatalf("manager -h listed no flags:\n%s", out)
	}
	sort.Strings(names)
	return names
}

// syncBuffer collects the manager's output for failure messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startManager runs the manager until the test ends, then stops it the way
// the kubelet does (SIGTERM, then SIGKILL).
func startManager(t *testing.T, bin string, args []string, kubeconfig string) *syncBuffer {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(bin, append(args, "--kubeconfig", kubeconfig)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("the manager ignored SIGTERM for 10s; logs:\n%s", logs)
		}
	})
	go func() {
		<-done
		fmt.Fprintf(logs, "\n[manager exited: %s]\n", cmd.ProcessState)
	}()
	return logs
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// poll calls done every 100ms for up to 30s; done says what it last saw.
func poll(t *testing.T, logs *syncBuffer, what string, done func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, seen := done()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 30s waiting for %s (last saw: %s); manager logs:\n%s", what, seen, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitHTTP waits for a 200 whose body contains want.
func waitHTTP(t *testing.T, logs *syncBuffer, url, want string) {
	t.Helper()
	poll(t, logs, url, func() (bool, string) {
		resp, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(body), want), resp.Status
	})
}

// checkSecureMetrics: with metrics.secure the manager serves /metrics over
// HTTPS, refuses a client without a token (401) and one whose token the API
// server does not authorize (403), and answers a ServiceAccount bound to
// the chart's metrics-reader ClusterRole: the chart gave the manager the
// TokenReview and SubjectAccessReview it needs.
func (cp *controlPlane) checkSecureMetrics(t *testing.T, logs *syncBuffer, port int) {
	t.Helper()
	ctx := t.Context()
	for _, name := range []string{"prometheus", "nobody"} {
		if err := cp.client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kompress-system"}}); err != nil {
			t.Fatal(err)
		}
	}
	var reader string
	var roles rbacv1.ClusterRoleList
	if err := cp.client.List(ctx, &roles); err != nil {
		t.Fatal(err)
	}
	for _, r := range roles.Items {
		if strings.HasSuffix(r.Name, "-metrics-reader") {
			reader = r.Name
		}
	}
	if reader == "" {
		t.Fatal("metrics.secure: no *-metrics-reader ClusterRole installed")
	}
	if err := cp.client.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: "kompress-system"}},
	}); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cp.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	token := func(sa string) string {
		tr, err := cs.CoreV1().ServiceAccounts("kompress-system").CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the manager's self-signed certificate
	url := fmt.Sprintf("https://127.0.0.1:%d/metrics", port)
	get := func(bearer string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}
	prom, nobody := token("prometheus"), token("nobody")
	poll(t, logs, url+" with the metrics-reader token", func() (bool, string) {
		code, body, err := get(prom)
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK && strings.Contains(body, "controller_runtime_"), fmt.Sprint(code)
	})
	if code, _, err := get(""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("GET %s without a token: %d %v, want 401", url, code, err)
	}
	if code, _, err := get(nobody); err != nil || code != http.StatusForbidden {
		t.Errorf("GET %s as a ServiceAccount without the metrics-reader role: %d %v, want 403", url, code, err)
	}
}

// waitLeader waits until the manager holds the leader-election Lease.
func (cp *controlPlane) waitLeader(t *testing.T, logs *syncBuffer, namespace string) {
	t.Helper()
	poll(t, logs, "Lease "+namespace+"/"+leaseName+" to have a holder", func() (bool, string) {
		var lease coordinationv1.Lease
		if err := cp.client.Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: leaseName}, &lease); err != nil {
			return false, err.Error()
		}
		return lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "", "a Lease without holder"
	})
}

// waitOwnedJob waits for the batch Job the manager creates for cpj's first stage.
func (cp *controlPlane) waitOwnedJob(t *testing.T, logs *syncBuffer, cpj *kompressv1alpha1.CompressionJob) *batchv1.Job {
	t.Helper()
	var found *batchv1.Job
	poll(t, logs, "a stage Job owned by CompressionJob "+cpj.Namespace+"/"+cpj.Name, func() (bool, string) {
		var jobs batchv1.JobList
		if err := cp.client.List(t.Context(), &jobs, client.InNamespace(cpj.Namespace)); err != nil {
			return false, err.Error()
		}
		for i := range jobs.Items {
			if ref := metav1.GetControllerOf(&jobs.Items[i]); ref != nil && ref.UID == cpj.UID {
				found = &jobs.Items[i]
				return true, ""
			}
		}
		var got kompressv1alpha1.CompressionJob
		if err := cp.client.Get(t.Context(), client.ObjectKeyFromObject(cpj), &got); err != nil {
			return false, err.Error()
		}
		return false, fmt.Sprintf("%d Jobs, CompressionJob conditions %+v", len(jobs.Items), got.Status.Conditions)
	})
	return found
}

func summarizeStagePod(t *testing.T, job *batchv1.Job) stagePod {
	t.Helper()
	spec := job.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("stage Job %s has %d containers, want 1", job.Name, len(spec.Containers))
	}
	c := spec.Containers[0]
	p := stagePod{
		Image:          c.Image,
		PullPolicy:     c.ImagePullPolicy,
		ServiceAccount: spec.ServiceAccountName,
		Resources:      map[string]string{},
		NodeSelector:   spec.NodeSelector,
		Tolerations:    spec.Tolerations,
	}
	for name, q := range c.Resources.Requests {
		p.Resources["requests."+string(name)] = q.String()
	}
	for name, q := range c.Resources.Limits {
		p.Resources["limits."+string(name)] = q.String()
	}
	for _, v := range spec.Volumes {
		if v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil {
			p.TmpSizeLimit = v.EmptyDir.SizeLimit.String()
		}
	}
	return p
}
