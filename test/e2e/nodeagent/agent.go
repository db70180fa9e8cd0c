package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Image says how to run an image's containers on this host.
type Image struct {
	// Binaries maps a container command (command[0]: a name PATH would find
	// in the image, or an absolute path in it) to a local executable.
	Binaries map[string]string
	// Env is what the image's config sets (build/*.image.json env); the container's own
	// env comes after it.
	Env []string
	// TerminationLogFlag, when set, is appended to the args as FLAG=PATH,
	// PATH being the host file that stands in for the container's
	// terminationMessagePath (a process here cannot write the container
	// path itself).
	TerminationLogFlag string
}

// Config configures an Agent.
type Config struct {
	// Rest reaches the API server; the agent needs to read pods, Nodes,
	// Secrets and ConfigMaps, write pod status and delete pods.
	Rest *rest.Config
	// Images by repository (the image reference without tag or digest).
	Images map[string]Image
	// Dir holds each pod's working directory, temporary directory,
	// termination-message file and container logs.
	Dir string
	// Manages reports whether the agent is the kubelet of a Node; nil
	// manages every Node.
	Manages func(node string) bool
	// OnStart is called with the PID of every process the agent starts
	// (e.g. to record it for a teardown script).
	OnStart func(pid int)
}

// Start is one container the agent started.
type Start struct {
	Namespace, Pod, Node, Container string
	UID                             types.UID
	PID                             int
	Command                         []string
	At                              time.Time
}

// Agent is the kubelet of its Nodes.
type Agent struct {
	cfg    Config
	client kubernetes.Interface
	pods   corelisters.PodLister
	queue  workqueue.TypedRateLimitingInterface[types.NamespacedName]

	mu      sync.Mutex
	runs    map[types.UID]*podRun
	started []Start
	wg      sync.WaitGroup
}

// New creates an Agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.Rest == nil || cfg.Dir == "" {
		return nil, errors.New("nodeagent: Config.Rest and Config.Dir are required")
	}
	rc := rest.CopyConfig(cfg.Rest)
	rc.QPS, rc.Burst = -1, 0 // a local API server: no client-side throttling
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	if cfg.Manages == nil {
		cfg.Manages = func(string) bool { return true }
	}
	return &Agent{
		cfg: cfg, client: cs, runs: map[types.UID]*podRun{},
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName]()),
	}, nil
}

// Run watches pods bound to a Node and syncs each one until ctx ends, then
// kills every process it started and waits for them.
func (a *Agent) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(a.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName!=" }))
	inf := factory.Core().V1().Pods()
	a.pods = inf.Lister()
	enqueue := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if p, ok := obj.(*corev1.Pod); ok {
			a.queue.Add(types.NamespacedName{Namespace: p.Namespace, Name: p.Name})
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return fmt.Errorf("nodeagent: the pod informer did not sync: %w", ctx.Err())
	}
	var workers sync.WaitGroup
	for i := 0; i < 4; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for a.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
	a.queue.ShutDown()
	workers.Wait()
	factory.Shutdown()
	for _, r := range a.snapshot() {
		r.abort()
	}
	a.wg.Wait()
	return nil
}

func (a *Agent) next(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	if err := a.sync(ctx, key); err != nil {
		a.queue.AddRateLimited(key)
		return true
	}
	a.queue.Forget(key)
	return true
}

// sync brings one pod's processes in line with the pod: start what is
// bound and not started, stop and remove what is deleted.
func (a *Agent) sync(ctx context.Context, key types.NamespacedName) error {
	pod, err := a.pods.Pods(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		a.forgetGone(key)
		return nil
	}
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" || !a.cfg.Manages(pod.Spec.NodeName) {
		return nil
	}
	a.mu.Lock()
	run := a.runs[pod.UID]
	a.mu.Unlock()
	if pod.DeletionTimestamp != nil {
		if run != nil {
			run.terminate(pod)
			return nil
		}
		// Nothing runs for it: confirm the deletion as the kubelet does.
		return a.forceDelete(ctx, pod)
	}
	if run != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	a.begin(ctx, pod)
	return nil
}

// forgetGone stops any process of a pod that vanished without the agent
// seeing its deletion.
func (a *Agent) forgetGone(key types.NamespacedName) {
	for _, r := range a.snapshot() {
		if r.key == key {
			r.abort()
		}
	}
}

func (a *Agent) forceDelete(ctx context.Context, pod *corev1.Pod) error {
	err := a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptrTo[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// snapshot lists the pods being run. A podRun's lock is never taken while
// holding the agent's: take this copy first.
func (a *Agent) snapshot() []*podRun {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*podRun, 0, len(a.runs))
	for _, r := range a.runs {
		out = append(out, r)
	}
	return out
}

// Started lists every container the agent started, in order.
func (a *Agent) Started() []Start {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Start(nil), a.started...)
}

// Kill sends sig to every running process of a pod, as a crash or an
// out-of-band kill would; the pod then fails with exit code 128+sig.
func (a *Agent) Kill(namespace, pod string, sig syscall.Signal) error {
	for _, r := range a.snapshot() {
		if r.key.Namespace == namespace && r.key.Name == pod {
			if !r.kill(sig, "") {
				return fmt.Errorf("nodeagent: pod %s/%s has no running process", namespace, pod)
			}
			return nil
		}
	}
	return fmt.Errorf("nodeagent: pod %s/%s is not running here", namespace, pod)
}

// Log returns what a pod's container wrote to stdout and stderr.
func (a *Agent) Log(namespace, pod, container string) string {
	b, _ := os.ReadFile(a.logPath(types.NamespacedName{Namespace: namespace, Name: pod}, container))
	return string(b)
}

func (a *Agent) logPath(key types.NamespacedName, container string) string {
	return filepath.Join(a.cfg.Dir, "logs", key.Namespace+"_"+key.Name+"_"+container+".log")
}

// image finds how to run a container's image.
func (a *Agent) image(ref string) (Image, bool) {
	repo := ref
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	img, ok := a.cfg.Images[repo]
	return img, ok
}

func ptrTo[T any](v T) *T { return &v }
