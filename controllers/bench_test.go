package controllers_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/test/controlplane"
)

// benchJobs is how many CompressionJobs BenchmarkCreate500 creates.
const benchJobs = 500

// BenchmarkCreate500 measures the manager as it ships: cmd/manager is built
// (CGO off) and run as its own process against a local API server, 500
// three-stage CompressionJobs are created, and the benchmark reports
// CompressionJobs per second until every first-stage Job exists, and the
// manager's peak resident memory (VmHWM). Run it with `make bench-controller`.
func BenchmarkCreate500(b *testing.B) {
	cp, err := controlplane.Start(controlplane.Options{CRDDirectoryPaths: []string{crdDir()}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			b.Error(err)
		}
	}()
	mgr := startManagerProcess(b, cp)
	defer mgr.stop(b)
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}

	// Warm up: the manager is running once it has created a Job.
	ctx := context.Background()
	warm := newNamespace(b, c)
	if err := c.Create(ctx, newCPJ(warm, "warm-up", pruneStage("prune"), distillStage("recover"), quantizeStage("int8"))); err != nil {
		b.Fatal(err)
	}
	if _, err := waitFirstStageJobs(ctx, c, warm, 1, time.Minute); err != nil {
		b.Fatalf("the manager did not start: %v\n%s", err, mgr.logTail())
	}

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ns := newNamespace(b, c)
		cpu0 := mgr.cpuSeconds(b)
		start := time.Now()
		createMany(b, c, ns, benchJobs)
		created := time.Since(start)
		n, err := waitFirstStageJobs(ctx, c, ns, benchJobs, 5*time.Minute)
		if err != nil {
			b.Fatalf("%d of %d first-stage Jobs after %s: %v\n%s", n, benchJobs, time.Since(start), err, mgr.logTail())
		}
		elapsed := time.Since(start)
		rate := float64(benchJobs) / elapsed.Seconds()
		rss := mgr.peakRSSMiB(b)
		cpu := mgr.cpuSeconds(b) - cpu0
		reqs := mgr.apiRequests(b)
		b.ReportMetric(rate, "cpj/s")
		b.ReportMetric(rss, "peak-RSS-MiB")
		b.ReportMetric(cpu, "manager-CPU-s")
		b.Logf("%d CompressionJobs created in %s; every first-stage Job existed after %s: %.1f CompressionJobs/s; "+
			"manager: peak RSS %.1f MiB, %.2f CPU seconds, API requests so far by method %v",
			benchJobs, created.Round(time.Millisecond), elapsed.Round(time.Millisecond), rate, rss, cpu, reqs)
	}
}

func newNamespace(b *testing.B, c client.Client) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		b.Fatal(err)
	}
	// The manager's default runner ServiceAccount, as the chart creates it.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "kompress-runner"}}
	if err := c.Create(context.Background(), sa); err != nil {
		b.Fatal(err)
	}
	return ns.Name
}

// createMany creates n three-stage CompressionJobs from a few workers, as
// a GitOps tool applying a folder would.
func createMany(b *testing.B, c client.Client, ns string, n int) {
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				cpj := newCPJ(ns, fmt.Sprintf("cpj-%03d", i), pruneStage("prune"), distillStage("recover"), quantizeStage("int8"))
				if err := c.Create(context.Background(), cpj); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// waitFirstStageJobs waits until n first-stage Jobs exist in ns.
func waitFirstStageJobs(ctx context.Context, c client.Client, ns string, n int, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	count := 0
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var jobs metav1.PartialObjectMetadataList
		jobs.SetGroupVersionKind(batchv1.SchemeGroupVersion.WithKind("JobList"))
		if err := c.List(ctx, &jobs, client.InNamespace(ns), client.MatchingLabels{controllers.LabelStageIndex: "0"}); err != nil {
			return false, err
		}
		count = len(jobs.Items)
		return count >= n, nil
	})
	return count, err
}

// managerProcess is cmd/manager running as its own process.
type managerProcess struct {
	cmd     *exec.Cmd
	log     string
	metrics string
	done    chan error
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// apiRequests sums the manager's rest_client_requests_total by method,
// from its own metrics endpoint.
func (m *managerProcess) apiRequests(b *testing.B) map[string]float64 {
	resp, err := http.Get("http://" + m.metrics + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, metric := range mfs["rest_client_requests_total"].GetMetric() {
		for _, l := range metric.GetLabel() {
			if l.GetName() == "method" {
				out[l.GetValue()] += metric.GetCounter().GetValue()
			}
		}
	}
	return out
}

func startManagerProcess(b *testing.B, cp *controlplane.ControlPlane) *managerProcess {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	bin := filepath.Join(b.TempDir(), "manager")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/manager")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building cmd/manager: %v\n%s", err, out)
	}
	m := &managerProcess{log: filepath.Join(b.TempDir(), "manager.log"), done: make(chan error, 1)}
	logf, err := os.Create(m.log)
	if err != nil {
		b.Fatal(err)
	}
	m.metrics = freeAddr(b)
	// The chart's flags, on loopback ports.
	m.cmd = exec.Command(bin, "--metrics-bind-address="+m.metrics, "--health-probe-bind-address=0", "--zap-log-level=info")
	m.cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.Kubeconfig)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { m.done <- m.cmd.Wait(); logf.Close() }()
	return m
}

// cpuSeconds reads the process's user plus system CPU time.
func (m *managerProcess) cpuSeconds(b *testing.B) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks (100 per second).
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("parsing /proc/%d/stat: %v %v", m.cmd.Process.Pid, err1, err2)
	}
	return (utime + stime) / 100
}

// peakRSSMiB reads the process's high-water mark of resident memory.
func (m *managerProcess) peakRSSMiB(b *testing.B) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

func (m *managerProcess) logTail() string {
	data, _ := os.ReadFile(m.log)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return "manager log tail:\n" + string(data)
}

func (m *managerProcess) stop(b *testing.B) {
	_ = m.cmd.Process.Signal(os.Interrupt)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
		b.Error("the manager did not stop within 30s of SIGINT")
	}
}
