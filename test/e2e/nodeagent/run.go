package nodeagent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Exit codes and reasons a container runtime reports.
const (
	exitStartError = 128
	reasonOOM      = "OOMKilled"
)

// podRun is the life of one pod on this agent: prepare its containers,
// run them, report them, and remove the pod if it was deleted.
type podRun struct {
	a   *Agent
	key types.NamespacedName
	uid types.UID
	dir string

	mu       sync.Mutex
	procs    []*proc
	stopping bool
	stop     chan struct{}
}

// proc is one container's process.
type proc struct {
	container *corev1.Container
	cmd       *exec.Cmd
	termLog   string
	logPath   string
	started   time.Time
	done      chan struct{}
	// killReason is set when the agent killed it as a cgroup would (OOM).
	killReason string
	result     containerResult
}

type containerResult struct {
	exitCode int32
	reason   string
	message  string
	started  time.Time
	finished time.Time
}

func (a *Agent) begin(ctx context.Context, pod *corev1.Pod) {
	key := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	r := &podRun{a: a, key: key, uid: pod.UID, stop: make(chan struct{}),
		dir: filepath.Join(a.cfg.Dir, "pods", string(pod.UID))}
	a.mu.Lock()
	a.runs[pod.UID] = r
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer func() {
			a.mu.Lock()
			delete(a.runs, r.uid)
			a.mu.Unlock()
		}()
		r.lifecycle(ctx, pod.DeepCopy())
	}()
}

func (r *podRun) lifecycle(ctx context.Context, pod *corev1.Pod) {
	procs, ok := r.prepare(ctx, pod)
	if !ok {
		r.finishDeleted(ctx, pod)
		return
	}
	r.start(ctx, pod, procs)
	for _, p := range procs {
		<-p.done
	}
	results := map[string]containerResult{}
	for _, p := range procs {
		results[p.container.Name] = p.result
	}
	if err := r.a.updateStatus(ctx, r.key, r.uid, func(p *corev1.Pod) { setTerminated(p, results) }); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "nodeagent: reporting pod %s finished: %v\n", r.key, err)
	}
	r.finishDeleted(ctx, pod)
}

// finishDeleted confirms the deletion of a pod whose processes are gone.
func (r *podRun) finishDeleted(ctx context.Context, pod *corev1.Pod) {
	r.mu.Lock()
	stopping := r.stopping
	r.mu.Unlock()
	if stopping && ctx.Err() == nil {
		_ = r.a.forceDelete(ctx, pod)
	}
}

// prepare builds every container's process, retrying while the kubelet
// would (a Secret that does not exist yet, an image it cannot run) and
// reporting the wait in the container's status. ok is false when the pod
// was deleted or the agent stopped first.
func (r *podRun) prepare(ctx context.Context, pod *corev1.Pod) ([]*proc, bool) {
	var last string
	for {
		procs, reason, err := r.build(ctx, pod)
		if err == nil {
			return procs, true
		}
		if msg := reason + ": " + err.Error(); msg != last {
			last = msg
			_ = r.a.updateStatus(ctx, r.key, r.uid, func(p *corev1.Pod) { setWaiting(p, reason, err.Error()) })
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-r.stop:
			return nil, false
		case <-time.After(time.Second):
		}
	}
}

func (r *podRun) build(ctx context.Context, pod *corev1.Pod) ([]*proc, string, error) {
	if len(pod.Spec.InitContainers) > 0 {
		return nil, "CreateContainerConfigError", fmt.Errorf("nodeagent runs no init containers (pod %s has %d)", r.key, len(pod.Spec.InitContainers))
	}
	node, err := r.a.client.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		return nil, "CreateContainerConfigError", fmt.Errorf("reading Node %s: %w", pod.Spec.NodeName, err)
	}
	var procs []*proc
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		img, ok := r.a.image(c.Image)
		if !ok {
			return nil, "ErrImagePull", fmt.Errorf("image %q is not one this node agent can run", c.Image)
		}
		objs, err := r.objects(ctx, pod, c, node)
		if err != nil {
			return nil, "CreateContainerConfigError", err
		}
		env, err := ContainerEnv(pod, c, objs)
		if err != nil {
			return nil, "CreateContainerConfigError", err
		}
		p, err := r.command(pod, c, img, env)
		if err != nil {
			return nil, "CreateContainerConfigError", err
		}
		procs = append(procs, p)
	}
	return procs, "", nil
}

// objects fetches the Secrets and ConfigMaps a container refers to.
func (r *podRun) objects(ctx context.Context, pod *corev1.Pod, c *corev1.Container, node *corev1.Node) (Objects, error) {
	objs := Objects{Node: node, Secrets: map[string]*corev1.Secret{}, ConfigMaps: map[string]*corev1.ConfigMap{}}
	secrets, configMaps := References(c)
	for _, name := range secrets {
		s, err := r.a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return objs, err
		}
		if err == nil {
			objs.Secrets[name] = s
		}
	}
	for _, name := range configMaps {
		cm, err := r.a.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return objs, err
		}
		if err == nil {
			objs.ConfigMaps[name] = cm
		}
	}
	return objs, nil
}

// command builds the process for a container: the image's executable for
// command[0], the args with $(VAR) expanded, the image's then the
// container's environment, and the memory limit as GOMEMLIMIT.
func (r *podRun) command(pod *corev1.Pod, c *corev1.Container, img Image, env []corev1.EnvVar) (*proc, error) {
	if len(c.Command) == 0 {
		return nil, fmt.Errorf("container %s has no command (nodeagent does not know image entrypoints)", c.Name)
	}
	lookup := func(name string) (string, bool) {
		for i := len(env) - 1; i >= 0; i-- {
			if env[i].Name == name {
				return env[i].Value, true
			}
		}
		return "", false
	}
	argv := make([]string, 0, len(c.Command)+len(c.Args)+1)
	for _, s := range append(append([]string(nil), c.Command...), c.Args...) {
		argv = append(argv, Expand(s, lookup))
	}
	bin, ok := img.Binaries[argv[0]]
	if !ok {
		bin, ok = img.Binaries[filepath.Base(argv[0])]
	}
	if !ok {
		return nil, fmt.Errorf("image %s has no executable %q", c.Image, argv[0])
	}
	dir := filepath.Join(r.dir, c.Name)
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	termLog := filepath.Join(dir, "termination-log")
	if err := os.WriteFile(termLog, nil, 0o644); err != nil {
		return nil, err
	}
	if img.TerminationLogFlag != "" {
		argv = append(argv, img.TerminationLogFlag+"="+termLog)
	}
	cmd := exec.Command(bin, argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append([]string{"HOSTNAME=" + pod.Name, "HOME=" + dir, "TMPDIR=" + tmp}, img.Env...)
	if lim, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		if _, set := lookup("GOMEMLIMIT"); !set {
			cmd.Env = append(cmd.Env, "GOMEMLIMIT="+strconv.FormatInt(lim.Value(), 10))
		}
	}
	for _, e := range env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	return &proc{container: c, cmd: cmd, termLog: termLog, done: make(chan struct{}),
		logPath: r.a.logPath(r.key, c.Name)}, nil
}

// start starts every process and reports the pod Running; a process that
// cannot start ends at once with exit code 128, reason StartError.
func (r *podRun) start(ctx context.Context, pod *corev1.Pod, procs []*proc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	startedAt := map[string]time.Time{}
	for _, p := range procs {
		p.started = time.Now()
		if r.stopping {
			p.finish(exitStartError, "StartError", "the pod was deleted before the container started")
			continue
		}
		if err := r.startOne(p, pod); err != nil {
			p.finish(exitStartError, "StartError", err.Error())
			continue
		}
		startedAt[p.container.Name] = p.started
		r.procs = append(r.procs, p)
	}
	if len(startedAt) == 0 {
		return
	}
	if err := r.a.updateStatus(ctx, r.key, r.uid, func(p *corev1.Pod) { setRunning(p, startedAt) }); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "nodeagent: reporting pod %s running: %v\n", r.key, err)
	}
}

func (r *podRun) startOne(p *proc, pod *corev1.Pod) error {
	if err := os.MkdirAll(filepath.Dir(p.logPath), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	if r.a.cfg.OnStart != nil {
		r.a.cfg.OnStart(p.cmd.Process.Pid)
	}
	r.a.mu.Lock()
	r.a.started = append(r.a.started, Start{
		Namespace: pod.Namespace, Pod: pod.Name, Node: pod.Spec.NodeName, Container: p.container.Name,
		UID: pod.UID, PID: p.cmd.Process.Pid, Command: p.cmd.Args, At: p.started,
	})
	r.a.mu.Unlock()
	watchdog := make(chan struct{})
	if lim, ok := p.container.Resources.Limits[corev1.ResourceMemory]; ok {
		go r.watchMemory(p, lim.Value(), watchdog)
	}
	go func() {
		err := p.cmd.Wait()
		close(watchdog)
		logf.Close()
		code, reason := exitStatus(p.cmd.ProcessState, err)
		r.mu.Lock()
		if p.killReason != "" {
			reason = p.killReason
		}
		r.mu.Unlock()
		p.finish(code, reason, terminationMessage(p, code))
	}()
	return nil
}

func (p *proc) finish(code int32, reason, message string) {
	p.result = containerResult{exitCode: code, reason: reason, message: message, started: p.started, finished: time.Now()}
	close(p.done)
}

// exitStatus is what a container runtime reports: the exit code, or 128
// plus the signal that killed the process; reason Completed or Error.
func exitStatus(ps *os.ProcessState, err error) (int32, string) {
	if ps == nil {
		return exitStartError, "StartError"
	}
	code := int32(ps.ExitCode())
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int32(ws.Signal())
	}
	if code == 0 && err == nil {
		return 0, "Completed"
	}
	return code, "Error"
}

// watchMemory kills the process, as the kernel would kill a container past
// its cgroup's memory limit, when its resident memory exceeds the limit.
func (r *podRun) watchMemory(p *proc, limit int64, done <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if rss, err := residentBytes(p.cmd.Process.Pid); err == nil && rss > limit {
				r.mu.Lock()
				p.killReason = reasonOOM
				r.mu.Unlock()
				_ = p.cmd.Process.Signal(syscall.SIGKILL)
				return
			}
		}
	}
}

// terminate stops a deleted pod's processes: SIGTERM, then SIGKILL after
// the deletion's grace period. The lifecycle then removes the pod.
func (r *podRun) terminate(pod *corev1.Pod) {
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return
	}
	r.stopping = true
	close(r.stop)
	procs := append([]*proc(nil), r.procs...)
	r.mu.Unlock()
	grace := int64(30)
	if pod.DeletionGracePeriodSeconds != nil {
		grace = *pod.DeletionGracePeriodSeconds
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		go func(p *proc) {
			select {
			case <-p.done:
			case <-time.After(time.Duration(grace) * time.Second):
				_ = p.cmd.Process.Signal(syscall.SIGKILL)
			}
		}(p)
	}
}

// kill signals every running process; reason, if set, is what the
// container status reports. It reports whether any process was signalled.
func (r *podRun) kill(sig syscall.Signal, reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	any := false
	for _, p := range r.procs {
		select {
		case <-p.done:
			continue
		default:
		}
		if reason != "" {
			p.killReason = reason
		}
		if p.cmd.Process.Signal(sig) == nil {
			any = true
		}
	}
	return any
}

// abort kills every process and stops a pod still being prepared: the pod
// is gone, or the agent is stopping.
func (r *podRun) abort() {
	r.kill(syscall.SIGKILL, "")
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopping {
		r.stopping = true
		close(r.stop)
	}
}
