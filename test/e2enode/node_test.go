//go:build e2enode

package e2enode

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/storage/storagetest"
	"github.com/kompress/kompress/test/controlplane"
	"github.com/kompress/kompress/test/e2e/s3proxy"
)

// The pod network: a bridge in the test's own network namespace (hack/
// e2e-node.sh runs the suite in new network, PID, mount and cgroup
// namespaces), whose gateway address the API server and the S3 proxy
// listen on so containers reach them.
const (
	bridgeName = "kbr0"
	gatewayIP  = "10.88.0.1"
	podSubnet  = "10.88.0.0/24"
	nodeName   = "node-1"
	bucket     = "kompress-models"
	// The pause image make e2e-node builds (hack/imagebuild/pause).
	pauseImage = "localhost/kompress/pause:1"
)

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

// node is everything the suite starts.
type node struct {
	repo, dir  string
	bin        string // KOMPRESS_NODE_BIN: containerd, shim, ctr, crictl, cni/
	cp         *controlplane.ControlPlane
	client     client.Client
	s3         *storagetest.S3
	proxy      *s3proxy.Proxy
	socket     string
	procs      []*exec.Cmd
	images     map[string]imageSummary // manager, runner
	apiPort    string
	kubeconfig string
}

type imageSummary struct{ Repository, Tag, Digest, ConfigDigest string }

func (s imageSummary) ref() string { return s.Repository + "@" + s.Digest }

var nd *node

func TestMain(m *testing.M) {
	if os.Getenv("KOMPRESS_E2E_NODE") != "1" {
		fmt.Fprintln(os.Stderr, "e2enode: run through hack/e2e-node.sh (make e2e-node): it needs its own network, PID, mount and cgroup namespaces")
		os.Exit(0)
	}
	start := time.Now()
	n, err := startNode()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2enode: starting:", err)
		if n != nil {
			n.dumpLogs()
			n.stop()
		}
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "e2enode: control plane, containerd, kubelet and the chart up in %s (work dir %s)\n", time.Since(start).Round(10*time.Millisecond), n.dir)
	nd = n
	code := m.Run()
	if code != 0 {
		n.dumpLogs()
	}
	n.stop()
	os.Exit(code)
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func startNode() (n *node, err error) {
	n = &node{repo: repoRoot(), bin: os.Getenv("KOMPRESS_NODE_BIN"), images: map[string]imageSummary{}}
	if n.dir, err = os.MkdirTemp("", "kompress-e2enode-"); err != nil {
		return nil, err
	}
	for _, name := range []string{"manager", "runner"} {
		var s imageSummary
		b, err := os.ReadFile(filepath.Join(os.Getenv("KOMPRESS_IMAGES"), name+".json"))
		if err != nil {
			return n, fmt.Errorf("the images make images wrote: %w", err)
		}
		if err := json.Unmarshal(b, &s); err != nil {
			return n, err
		}
		n.images[name] = s
	}
	// The pod network's bridge, so the API server can listen on its
	// gateway before the first pod exists.
	for _, args := range [][]string{
		{"link", "add", bridgeName, "type", "bridge"},
		{"addr", "add", gatewayIP + "/24", "dev", bridgeName},
		{"link", "set", bridgeName, "up"},
	} {
		if _, err := run("ip", args...); err != nil {
			return n, err
		}
	}
	step := timer("control plane")
	n.cp, err = controlplane.Start(controlplane.Options{Scheduler: true, ControllerManager: true, Address: gatewayIP, ServiceAccountTokens: true, RealNodes: true})
	if err != nil {
		return n, err
	}
	n.kubeconfig = n.cp.Kubeconfig
	_, n.apiPort, _ = net.SplitHostPort(strings.TrimPrefix(n.cp.Config.Host, "https://"))
	if n.client, err = client.New(n.cp.Config, client.Options{Scheme: scheme}); err != nil {
		return n, err
	}
	step()
	step = timer("containerd")
	if err := n.startContainerd(); err != nil {
		return n, err
	}
	step()
	step = timer("kubelet (node Ready)")
	if err := n.startKubelet(); err != nil {
		return n, err
	}
	step()
	if n.s3, err = storagetest.NewS3(bucket); err != nil {
		return n, err
	}
	if n.proxy, err = s3proxy.StartAt(gatewayIP+":0", n.s3.Endpoint); err != nil {
		return n, err
	}
	return n, nil
}

func timer(what string) func() {
	start := time.Now()
	return func() {
		fmt.Fprintf(os.Stderr, "e2enode: %s up in %s\n", what, time.Since(start).Round(10*time.Millisecond))
	}
}

func (n *node) start(name string, args []string, env ...string) (*exec.Cmd, error) {
	logf, err := os.Create(filepath.Join(n.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(append(os.Environ(), "PATH="+n.bin+":"+os.Getenv("PATH")), env...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n.procs = append(n.procs, cmd)
	go func() { _ = cmd.Wait(); logf.Close() }()
	return cmd, nil
}

// startContainerd runs containerd with the CRI plugin: overlayfs, runc
// (Debian's) through the v2 shim with cgroupfs, the CNI bridge, the pause
// image pinned, and oom_score_adj restricted to what this process may set
// (this machine's root lacks CAP_SYS_RESOURCE, so the negative scores the
// kubelet asks for would fail every sandbox); then imports the images.
func (n *node) startContainerd() error {
	n.socket = filepath.Join(n.dir, "containerd.sock")
	cniConf := filepath.Join(n.dir, "cni")
	if err := os.MkdirAll(cniConf, 0o755); err != nil {
		return err
	}
	conflist := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "kompress", "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}}]}`, bridgeName, podSubnet, gatewayIP, filepath.Join(n.dir, "ipam"))
	if err := os.WriteFile(filepath.Join(cniConf, "10-kompress.conflist"), []byte(conflist), 0o644); err != nil {
		return err
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return fmt.Errorf("runc (apt-get install runc): %w", err)
	}
	cfg := fmt.Sprintf(`version = 3
root = %q
state = %q
[grpc]
  address = %q
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = %q
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%q]
    conf_dir = %q
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = %q
        SystemdCgroup = false
`, filepath.Join(n.dir, "containerd", "root"), filepath.Join(n.dir, "containerd", "state"), n.socket, pauseImage,
		filepath.Join(n.bin, "cni"), cniConf, runc)
	cfgFile := filepath.Join(n.dir, "containerd.toml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return err
	}
	if _, err := n.start("containerd", []string{filepath.Join(n.bin, "containerd"), "--config", cfgFile}); err != nil {
		return err
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		_, err := n.ctr("version")
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("containerd did not answer in 30s")
	}
	for _, dir := range []string{os.Getenv("KOMPRESS_PAUSE_IMAGE"), filepath.Join(os.Getenv("KOMPRESS_IMAGES"), "manager"), filepath.Join(os.Getenv("KOMPRESS_IMAGES"), "runner")} {
		if err := n.importLayout(dir); err != nil {
			return err
		}
	}
	// The chart pins the images by digest: a pull by digest records the
	// name repository@digest, which ctr images import does not.
	for _, img := range n.images {
		if _, err := n.ctr("images", "tag", img.Repository+":"+img.Tag, img.ref()); err != nil {
			return err
		}
	}
	return nil
}

// importLayout imports an OCI layout with ctr images import, as a cluster
// admin loads images on an air-gapped node.
func (n *node) importLayout(dir string) error {
	tar := exec.Command("tar", "-C", dir, "-cf", "-", ".")
	imp := exec.Command(filepath.Join(n.bin, "ctr"), "-a", n.socket, "-n", "k8s.io", "images", "import", "-")
	var out bytes.Buffer
	imp.Stdout, imp.Stderr = &out, &out
	pipe, err := tar.StdoutPipe()
	if err != nil {
		return err
	}
	imp.Stdin = pipe
	if err := tar.Start(); err != nil {
		return err
	}
	if err := imp.Run(); err != nil {
		return fmt.Errorf("ctr images import %s: %v\n%s", dir, err, out.String())
	}
	return tar.Wait()
}

func (n *node) ctr(args ...string) (string, error) {
	return run(filepath.Join(n.bin, "ctr"), append([]string{"-a", n.socket, "-n", "k8s.io"}, args...)...)
}

// crictl runs crictl against containerd's CRI and returns its stdout.
func (n *node) crictl(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(n.bin, "crictl"), append([]string{"--runtime-endpoint", "unix://" + n.socket, "--image-endpoint", "unix://" + n.socket}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("crictl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// startKubelet runs the kubelet against containerd on this cgroup v1
// machine (failCgroupV1: false), registering node-1 in the edge pool,
// and waits for the Node to be Ready.
func (n *node) startKubelet() error {
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
address: %s
readOnlyPort: 0
healthzPort: 0
failSwapOn: false
podLogsDir: %s
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
serializeImagePulls: false
`, n.socket, gatewayIP, filepath.Join(n.dir, "pod-logs"))
	cfgFile := filepath.Join(n.dir, "kubelet.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		return err
	}
	kubelet := filepath.Join(os.Getenv(controlplane.AssetsEnv), "kubelet")
	if _, err := n.start("kubelet", []string{kubelet, "--config", cfgFile, "--kubeconfig", n.kubeconfig,
		"--root-dir", filepath.Join(n.dir, "kubelet"), "--cert-dir", filepath.Join(n.dir, "kubelet-pki"),
		"--hostname-override", nodeName, "--node-ip", gatewayIP, "--node-labels", "pool=edge", "-v=2"}); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		var no corev1.Node
		if err := n.client.Get(ctx, client.ObjectKey{Name: nodeName}, &no); err != nil {
			return false, nil
		}
		for _, c := range no.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

func (n *node) stop() {
	if n.proxy != nil {
		_ = n.proxy.Close()
	}
	if n.s3 != nil {
		n.s3.Close()
	}
	// kubelet, then containerd (its shims and containers die with this PID
	// namespace when the suite exits).
	for i := len(n.procs) - 1; i >= 0; i-- {
		_ = n.procs[i].Process.Signal(syscall.SIGTERM)
	}
	time.Sleep(time.Second)
	if n.cp != nil {
		_ = n.cp.Stop()
	}
	if os.Getenv("KOMPRESS_E2E_KEEP") == "" {
		_ = exec.Command("sh", "-c", "umount -R "+n.dir+"/kubelet 2>/dev/null; umount -R "+n.dir+"/containerd 2>/dev/null; rm -rf "+n.dir).Run()
	}
}

func (n *node) dumpLogs() {
	for _, name := range []string{"kubelet", "containerd"} {
		b, _ := os.ReadFile(filepath.Join(n.dir, name+".log"))
		lines := strings.Split(string(b), "\n")
		var errs []string
		for _, l := range lines {
			if strings.HasPrefix(l, "E") || strings.Contains(l, "level=error") {
				errs = append(errs, l)
			}
		}
		if len(errs) > 30 {
			errs = errs[len(errs)-30:]
		}
		fmt.Fprintf(os.Stderr, "e2enode: %s errors (last 30):\n%s\n", name, strings.Join(errs, "\n"))
	}
	if out, err := n.crictl("ps", "-a"); err == nil {
		fmt.Fprintf(os.Stderr, "e2enode: crictl ps -a:\n%s\n", out)
	}
}

// The node is a real one: the kubelet registered it, containerd runs
// runc, and the images are the ones make images built (by digest).
func TestNodeRunsTheBuiltImages(t *testing.T) {
	out, err := nd.ctr("images", "ls")
	if err != nil {
		t.Fatal(err)
	}
	for name, img := range nd.images {
		if !strings.Contains(out, img.Digest) {
			t.Errorf("containerd has no %s image with digest %s:\n%s", name, img.Digest, out)
		}
	}
	var no corev1.Node
	if err := nd.client.Get(context.Background(), client.ObjectKey{Name: nodeName}, &no); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(no.Status.NodeInfo.ContainerRuntimeVersion, "containerd://2.") || no.Status.NodeInfo.KubeletVersion != "v1.37.2" {
		t.Errorf("node runtime %q kubelet %q, want containerd 2.x and v1.37.2", no.Status.NodeInfo.ContainerRuntimeVersion, no.Status.NodeInfo.KubeletVersion)
	}
}
