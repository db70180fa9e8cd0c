package controlplane

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// AssetsEnv is the environment variable naming the folder of binaries.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// Options says what to start besides kube-apiserver and etcd.
type Options struct {
	// CRDDirectoryPaths hold CRDs installed before Start returns.
	CRDDirectoryPaths []string
	// Scheduler starts kube-scheduler, which binds pods to Nodes.
	Scheduler bool
	// ControllerManager starts kube-controller-manager: the Job controller
	// creates pods, the garbage collector follows owner references. The
	// node-lifecycle and node-ipam controllers stay off, so Nodes without a
	// kubelet are not marked Unknown and evicted.
	ControllerManager bool
	// Logs receives the scheduler's and controller-manager's output; nil
	// writes it to files in Dir (see LogFile).
	Logs io.Writer
	// Address is the IP the API server listens on and has in its serving
	// certificate, besides localhost (default 127.0.0.1): make e2e-node
	// uses the pod network's gateway, so containers reach it too.
	Address string
	// ServiceAccountTokens turns the ServiceAccount admission plugin back
	// on (envtest turns it off): pods get their ServiceAccount's token
	// and the cluster's CA, as a kubelet-run manager needs.
	ServiceAccountTokens bool
	// RealNodes keeps kube-controller-manager's node-lifecycle controller
	// on, for Nodes that have a kubelet: it lifts the not-ready taint a
	// Node registers with once it is Ready.
	RealNodes bool
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	Env *envtest.Environment
	// Config is a system:masters user's configuration.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for that user.
	Kubeconfig string
	// Dir holds the kubeconfig and the components' logs.
	Dir string

	procs []*process
}

type process struct {
	name string
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

// AssetsDir returns KUBEBUILDER_ASSETS after checking that it holds the
// binaries needed; the error says how to build them.
func AssetsDir(binaries ...string) (string, error) {
	dir := os.Getenv(AssetsEnv)
	if dir == "" {
		return "", fmt.Errorf("%s is not set: run `make tools-k8s` (hack/tools.sh k8s) and export %s=$(hack/tools.sh env | sed -n 's/^%s=//p'), usually ~/.cache/kompress/k8s-v1.37.2",
			AssetsEnv, AssetsEnv, AssetsEnv)
	}
	for _, b := range append([]string{"kube-apiserver", "etcd"}, binaries...) {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("%s=%s has no %s: run `make tools-k8s` (hack/tools.sh k8s) to build it: %w", AssetsEnv, dir, b, err)
		}
	}
	return dir, nil
}

// Start starts the control plane; Stop it when done.
func Start(opts Options) (cp *ControlPlane, err error) {
	var extra []string
	if opts.Scheduler {
		extra = append(extra, "kube-scheduler")
	}
	if opts.ControllerManager {
		extra = append(extra, "kube-controller-manager")
	}
	assets, err := AssetsDir(extra...)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kompress-controlplane-")
	if err != nil {
		return nil, err
	}
	cp = &ControlPlane{
		Dir: dir,
		Env: &envtest.Environment{
			BinaryAssetsDirectory: assets,
			CRDDirectoryPaths:     opts.CRDDirectoryPaths,
			ErrorIfCRDPathMissing: true,
		},
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, cp.Stop())
		}
	}()
	api := cp.Env.ControlPlane.GetAPIServer()
	if opts.Address != "" {
		ln, err := net.Listen("tcp", net.JoinHostPort(opts.Address, "0"))
		if err != nil {
			return cp, fmt.Errorf("no free port on %s for the API server: %w", opts.Address, err)
		}
		api.SecureServing.Address = opts.Address
		api.SecureServing.Port = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
	}
	if opts.ServiceAccountTokens {
		api.Configure().Disable("disable-admission-plugins")
	}
	if _, err := cp.Env.Start(); err != nil {
		return cp, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	admin, err := cp.Env.AddUser(envtest.User{Name: "kompress-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return cp, fmt.Errorf("adding the admin user: %w", err)
	}
	cp.Config = admin.Config()
	// client-go would throttle clients of this config to 5 requests per
	// second; a local API server for tests needs no client-side limit (the
	// kubeconfig file, for separate processes, leaves that to them).
	cp.Config.QPS = -1
	kc, err := admin.KubeConfig()
	if err != nil {
		return cp, err
	}
	cp.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(cp.Kubeconfig, kc, 0o600); err != nil {
		return cp, err
	}
	if opts.ControllerManager {
		controllers := "--controllers=*,-node-lifecycle-controller,-node-ipam-controller"
		if opts.RealNodes {
			controllers = "--controllers=*,-node-ipam-controller"
		}
		err := cp.startProcess(opts.Logs, filepath.Join(assets, "kube-controller-manager"),
			"--kubeconfig="+cp.Kubeconfig, "--leader-elect=false", "--secure-port=0", controllers,
			// Finished pods would otherwise be collected only past 12,500.
			"--terminated-pod-gc-threshold=1000")
		if err != nil {
			return cp, err
		}
	}
	if opts.Scheduler {
		err := cp.startProcess(opts.Logs, filepath.Join(assets, "kube-scheduler"),
			"--kubeconfig="+cp.Kubeconfig, "--leader-elect=false", "--secure-port=0")
		if err != nil {
			return cp, err
		}
	}
	return cp, nil
}

// LogFile is where a component's output goes when Options.Logs is nil.
func (cp *ControlPlane) LogFile(component string) string {
	return filepath.Join(cp.Dir, component+".log")
}

func (cp *ControlPlane) startProcess(logs io.Writer, path string, args ...string) error {
	name := filepath.Base(path)
	p := &process{name: name, done: make(chan error, 1)}
	p.cmd = exec.Command(path, args...)
	if logs == nil {
		f, err := os.Create(cp.LogFile(name))
		if err != nil {
			return err
		}
		p.log, logs = f, f
	}
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	cp.procs = append(cp.procs, p)
	return nil
}

// Stop stops the scheduler and controller-manager, then the API server
// before etcd (the other order hangs for a minute), and removes Dir.
func (cp *ControlPlane) Stop() error {
	var errs []error
	for i := len(cp.procs) - 1; i >= 0; i-- {
		errs = append(errs, cp.procs[i].stop())
	}
	cp.procs = nil
	if cp.Env != nil && cp.Env.ControlPlane.APIServer != nil {
		errs = append(errs, cp.Env.Stop())
	}
	if cp.Dir != "" {
		errs = append(errs, os.RemoveAll(cp.Dir))
	}
	return errors.Join(errs...)
}

func (p *process) stop() error {
	defer func() {
		if p.log != nil {
			p.log.Close()
		}
	}()
	select {
	case <-p.done:
		return nil // already exited
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

// Exited reports a component that stopped on its own, with its error.
func (cp *ControlPlane) Exited() error {
	for _, p := range cp.procs {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited: %v (log: %s)", p.name, err, cp.LogFile(p.name))
		default:
		}
	}
	return nil
}
