//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/storage/storagetest"
	"github.com/kompress/kompress/test/controlplane"
	"github.com/kompress/kompress/test/e2e/nodeagent"
	"github.com/kompress/kompress/test/e2e/s3proxy"
)

// The cluster every test shares.
const (
	releaseNamespace = "kompress-system"
	bucket           = "kompress-models"
	secretName       = "kompress-s3"
	// noRunnerSANamespace is left out of the chart's runner ServiceAccount
	// namespaces on purpose.
	noRunnerSANamespace = "e2e-no-sa"
)

// testNamespaces get the chart's runner ServiceAccount and the storage
// Secret; each test works in its own.
var testNamespaces = []string{
	"e2e-sample", "e2e-placement", "e2e-retry", "e2e-badmodel", "e2e-cache",
	"e2e-delete", "e2e-gates", "e2e-scale", "e2e-policy", "e2e-regression", "e2e-shards", "e2e-layers", sweepNamespace,
	kueueAdmitNamespace, kueueShardsNamespace, kueueSweepNamespace,
}

// Node pools: a small tainted edge pool and a general pool.
var (
	edgeTaint = corev1.Taint{Key: "pool", Value: "edge", Effect: corev1.TaintEffectNoSchedule}
	edgePool  = controlplane.NodePool{
		Name: "edge", Count: 3, Labels: map[string]string{"pool": "edge"}, Taints: []corev1.Taint{edgeTaint},
		Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")},
	}
	generalPool = controlplane.NodePool{
		Name: "general", Count: 2, Labels: map[string]string{"pool": "general"},
		Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi")},
	}
)

// cluster is everything the suite starts.
type cluster struct {
	repo        string
	bin         binaries
	cp          *controlplane.ControlPlane
	client      client.WithWatch
	s3          *storagetest.S3
	proxy       *s3proxy.Proxy
	agent       *nodeagent.Agent
	manager     *managerProcess
	kueue       *managerProcess
	runnerImage string
	// runnerSA is the ServiceAccount stage pods run as (--runner-service-account).
	runnerSA string
	pids     *pidFile
	dir      string

	stopAgent context.CancelFunc
	agentDone chan error
}

type binaries struct{ manager, kompress string }

var scheme = func() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// startCluster brings the whole cluster up; on error it tears down what
// it started.
func startCluster(ctx context.Context) (c *cluster, err error) {
	c = &cluster{repo: repoRoot()}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if c.dir, err = os.MkdirTemp("", "kompress-e2e-"); err != nil {
		return c, err
	}
	c.pids = openPIDFile(os.Getenv("KOMPRESS_E2E_PIDFILE"))
	if c.bin, err = buildBinaries(c.repo, c.dir); err != nil {
		return c, err
	}
	step := timer("control plane")
	c.cp, err = controlplane.Start(controlplane.Options{Scheduler: true, ControllerManager: true})
	if err != nil {
		return c, err
	}
	c.pids.children() // kube-apiserver, etcd, kube-scheduler, kube-controller-manager
	if c.client, err = client.NewWithWatch(c.cp.Config, client.Options{Scheme: scheme}); err != nil {
		return c, err
	}
	step()
	if err := c.addNodes(ctx); err != nil {
		return c, err
	}
	if err := c.startStorage(); err != nil {
		return c, err
	}
	if err := c.createNamespaces(ctx); err != nil {
		return c, err
	}
	step = timer("helm install and manager")
	dep, err := c.helmInstall()
	if err != nil {
		return c, err
	}
	if err := c.startManager(ctx, dep); err != nil {
		return c, err
	}
	step()
	step = timer("Kueue")
	if err := c.startKueue(ctx); err != nil {
		return c, err
	}
	step()
	return c, c.startAgent()
}

// stop tears down in reverse order: agent (kills runners), Kueue, manager,
// storage, control plane (scheduler and controller-manager, then the API
// server before etcd).
func (c *cluster) stop() {
	if c.stopAgent != nil {
		c.stopAgent()
		<-c.agentDone
	}
	if c.kueue != nil {
		c.kueue.stop()
	}
	if c.manager != nil {
		c.manager.stop()
	}
	if c.proxy != nil {
		_ = c.proxy.Close()
	}
	if c.s3 != nil {
		c.s3.Close()
	}
	if c.cp != nil {
		if err := c.cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: stopping the control plane:", err)
		}
	}
	if c.dir != "" && os.Getenv("KOMPRESS_E2E_KEEP") == "" {
		_ = os.RemoveAll(c.dir)
	}
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// buildBinaries uses the binaries hack/e2e.sh built (KOMPRESS_E2E_BIN), or
// builds them as the images do: the manager with CGO off, the runner with
// cgo (ONNX Runtime).
func buildBinaries(repo, dir string) (binaries, error) {
	if d := os.Getenv("KOMPRESS_E2E_BIN"); d != "" {
		b := binaries{manager: filepath.Join(d, "manager"), kompress: filepath.Join(d, "kompress")}
		for _, p := range []string{b.manager, b.kompress} {
			if _, err := os.Stat(p); err != nil {
				return b, fmt.Errorf("KOMPRESS_E2E_BIN=%s: %w (run `make build`)", d, err)
			}
		}
		return b, nil
	}
	b := binaries{manager: filepath.Join(dir, "manager"), kompress: filepath.Join(dir, "kompress")}
	for _, bin := range []struct{ out, pkg, cgo string }{{b.manager, "./cmd/manager", "0"}, {b.kompress, "./cmd/kompress", "1"}} {
		cmd := exec.Command("go", "build", "-o", bin.out, bin.pkg)
		cmd.Dir, cmd.Env = repo, append(os.Environ(), "CGO_ENABLED="+bin.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %v\n%s", bin.pkg, err, out)
		}
	}
	return b, nil
}

func (c *cluster) addNodes(ctx context.Context) error {
	for _, pool := range []controlplane.NodePool{edgePool, generalPool} {
		if _, err := controlplane.AddNodePool(ctx, c.client, pool); err != nil {
			return err
		}
	}
	return nil
}

// startStorage starts the S3 server with the sample's bucket, the proxy
// every URI goes through, and uploads the sample's model and dataset.
func (c *cluster) startStorage() error {
	var err error
	if c.s3, err = storagetest.NewS3(bucket); err != nil {
		return err
	}
	if c.proxy, err = s3proxy.Start(c.s3.Endpoint); err != nil {
		return err
	}
	for key, file := range map[string]string{
		sampleModelKey:   "config/samples/models/mnist-8.onnx",
		sampleDatasetKey: "config/samples/data/mnist-test-1k.npz",
	} {
		data, err := os.ReadFile(filepath.Join(c.repo, file))
		if err != nil {
			return err
		}
		if err := c.s3.Put(bucket, key, data); err != nil {
			return err
		}
	}
	return nil
}

// createNamespaces creates every test namespace with the storage Secret.
func (c *cluster) createNamespaces(ctx context.Context) error {
	for _, ns := range append(append([]string(nil), testNamespaces...), noRunnerSANamespace) {
		if err := c.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: ns},
			StringData: map[string]string{"AWS_ACCESS_KEY_ID": storagetest.AccessKey, "AWS_SECRET_ACCESS_KEY": storagetest.SecretKey},
		}
		if err := c.client.Create(ctx, sec); err != nil {
			return err
		}
	}
	return nil
}

// helmInstall installs charts/kompress as a platform engineer would, with
// the runner ServiceAccount in every test namespace, and returns the
// manager Deployment it created.
func (c *cluster) helmInstall() (*appsv1.Deployment, error) {
	helm := os.Getenv("HELM")
	if helm == "" {
		helm = filepath.Join(cacheDir(), "tools", "helm-v3.22.0")
	}
	if _, err := os.Stat(helm); err != nil {
		return nil, fmt.Errorf("helm not found at %s: build it with `make tools-gen`, or set HELM: %w", helm, err)
	}
	home := filepath.Join(c.dir, "helm")
	args := []string{"install", "kompress", filepath.Join(c.repo, "charts", "kompress"),
		"--namespace", releaseNamespace, "--create-namespace", "--kubeconfig", c.cp.Kubeconfig, "--wait=false",
		"--set", "runner.serviceAccount.namespaces={" + strings.Join(testNamespaces, ",") + "}",
		"--set", fmt.Sprintf("metrics.port=%d,health.port=%d", freePort(), freePort())}
	cmd := exec.Command(helm, args...)
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home+"/config", "HELM_CACHE_HOME="+home+"/cache", "HELM_DATA_HOME="+home+"/data")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	var deps appsv1.DeploymentList
	if err := c.client.List(context.Background(), &deps, client.InNamespace(releaseNamespace)); err != nil {
		return nil, err
	}
	if len(deps.Items) != 1 {
		return nil, fmt.Errorf("helm install created %d Deployments in %s, want 1", len(deps.Items), releaseNamespace)
	}
	return &deps.Items[0], nil
}

// startManager runs the manager binary as the chart's Deployment would:
// its args, authenticated as its ServiceAccount (so the chart's RBAC is
// what it is allowed).
func (c *cluster) startManager(ctx context.Context, dep *appsv1.Deployment) error {
	var ctr *corev1.Container
	for i := range dep.Spec.Template.Spec.Containers {
		if dep.Spec.Template.Spec.Containers[i].Name == "manager" {
			ctr = &dep.Spec.Template.Spec.Containers[i]
		}
	}
	if ctr == nil {
		return fmt.Errorf("Deployment %s has no manager container", dep.Name)
	}
	for _, a := range ctr.Args {
		if v, ok := strings.CutPrefix(a, "--runner-image="); ok {
			c.runnerImage = v
		}
		if v, ok := strings.CutPrefix(a, "--runner-service-account="); ok {
			c.runnerSA = v
		}
	}
	sa := dep.Spec.Template.Spec.ServiceAccountName
	kubeconfig, err := c.serviceAccountKubeconfig(dep.Namespace, sa)
	if err != nil {
		return err
	}
	c.manager, err = startManagerProcess(c.bin.manager, append(append([]string(nil), ctr.Args...), "--kubeconfig="+kubeconfig), filepath.Join(c.dir, "manager.log"))
	if err != nil {
		return err
	}
	c.pids.add(c.manager.cmd.Process.Pid)
	return c.manager.waitReady(ctx, ctr.Args)
}

// serviceAccountKubeconfig authenticates as ServiceAccount namespace/name:
// RBAC matches ServiceAccount subjects by this user name and these groups.
func (c *cluster) serviceAccountKubeconfig(namespace, name string) (string, error) {
	user, err := c.cp.Env.AddUser(envtest.User{
		Name:   "system:serviceaccount:" + namespace + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}, nil)
	if err != nil {
		return "", err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.dir, "manager.kubeconfig")
	return path, os.WriteFile(path, kc, 0o600)
}

// startAgent plays the kubelet of every Node: the runner image is the
// kompress binary with ONNX Runtime, as build/runner.image.json lays it out.
func (c *cluster) startAgent() error {
	repo := c.runnerImage
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	ortLib := os.Getenv("ONNXRUNTIME_LIB")
	if ortLib == "" {
		ortLib = filepath.Join(cacheDir(), "onnxruntime-1.30.0", "libonnxruntime.so")
	}
	if _, err := os.Stat(ortLib); err != nil {
		return fmt.Errorf("ONNX Runtime not found at %s: install it with `make ort`, or set ONNXRUNTIME_LIB: %w", ortLib, err)
	}
	var err error
	c.agent, err = nodeagent.New(nodeagent.Config{
		Rest: rest.CopyConfig(c.cp.Config),
		Dir:  filepath.Join(c.dir, "agent"),
		Images: map[string]nodeagent.Image{repo: {
			Binaries:           map[string]string{"kompress": c.bin.kompress},
			Env:                []string{"PATH=/usr/local/bin:/usr/bin:/bin", "ONNXRUNTIME_LIB=" + ortLib},
			TerminationLogFlag: "--termination-log",
		}},
		OnStart: c.pids.add,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.stopAgent, c.agentDone = cancel, make(chan error, 1)
	go func() { c.agentDone <- c.agent.Run(ctx) }()
	return nil
}

// exited reports a component that stopped on its own.
func (c *cluster) exited() error {
	var errs []error
	errs = append(errs, c.cp.Exited())
	if c.manager.exited() {
		errs = append(errs, fmt.Errorf("the manager exited; log %s:\n%s", c.manager.logPath, c.manager.tail(40)))
	}
	if c.kueue.exited() {
		errs = append(errs, fmt.Errorf("Kueue exited; log %s:\n%s", c.kueue.logPath, c.kueue.tail(40)))
	}
	return errors.Join(errs...)
}

func cacheDir() string {
	if d := os.Getenv("KOMPRESS_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kompress")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "kompress")
}

// timer prints how long a start-up step took.
func timer(what string) func() {
	start := time.Now()
	return func() {
		fmt.Fprintf(os.Stderr, "e2e: %s up in %s\n", what, time.Since(start).Round(10*time.Millisecond))
	}
}
