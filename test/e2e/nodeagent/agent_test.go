package nodeagent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/test/controlplane"
	"github.com/kompress/kompress/test/e2e/nodeagent"
)

// helperEnv marks this test binary, run by the agent as a container's
// executable, as a fake container: see TestMain.
const helperEnv = "NODEAGENT_TEST_HELPER"

// TestMain doubles as the container process: the agent runs this binary
// with the image's env (helperEnv set) and the container's args.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helper(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// helper acts out a container: args are MODE then --termination-log=PATH.
func helper(args []string) int {
	mode, termLog := args[0], ""
	for _, a := range args[1:] {
		if v, ok := strings.CutPrefix(a, "--termination-log="); ok {
			termLog = v
		}
	}
	write := func(s string) { _ = os.WriteFile(termLog, []byte(s), 0o644) }
	switch mode {
	case "env":
		// Report the environment the kubelet would have given us.
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		b, _ := json.Marshal(env)
		write(string(b))
		return 0
	case "fail":
		for i := 0; i < 100; i++ {
			fmt.Printf("line %d\n", i)
		}
		return 3
	case "sleep":
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		fmt.Println("sleeping")
		<-sig
		write("got SIGTERM")
		return 0
	case "hog":
		var keep [][]byte
		for {
			b := make([]byte, 16<<20)
			for i := range b {
				b[i] = 1
			}
			keep = append(keep, b)
			time.Sleep(10 * time.Millisecond)
		}
	}
	return 2
}

// The agent runs bound pods' containers as processes and reports them as a
// kubelet would, on a real API server.
func TestAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("needs kube-apiserver and etcd (make tools-k8s)")
	}
	cp, err := controlplane.Start(controlplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.New(cp.Config, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controlplane.AddNodePool(ctx, c, controlplane.NodePool{Name: "edge", Count: 1,
		Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}}); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	agent, err := nodeagent.New(nodeagent.Config{
		Rest: cp.Config, Dir: t.TempDir(),
		Images: map[string]nodeagent.Image{"example.com/helper": {
			Binaries:           map[string]string{"helper": self},
			Env:                []string{helperEnv + "=1", "IMAGE_VAR=from-image"},
			TerminationLogFlag: "--termination-log",
		}},
		OnStart: func(pid int) { pids = append(pids, pid) },
	})
	if err != nil {
		t.Fatal(err)
	}
	agentCtx, stopAgent := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- agent.Run(agentCtx) }()
	t.Cleanup(func() {
		stopAgent()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	pod := func(name, mode string, mut ...func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{
				NodeName: "edge-0", RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "main", Image: "example.com/helper:v1", Command: []string{"helper"}, Args: []string{mode}}},
			},
		}
		for _, m := range mut {
			m(p)
		}
		if err := c.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("environment and termination message", func(t *testing.T) {
		p := pod("env", "env", func(p *corev1.Pod) {
			ctr := &p.Spec.Containers[0]
			ctr.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}
			ctr.Env = []corev1.EnvVar{
				{Name: "SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "token"}}},
				{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
				{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
			}
		})
		// The Secret does not exist yet: the container waits, as with a kubelet.
		got := waitPod(ctx, t, c, p, func(p *corev1.Pod) bool {
			return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Waiting != nil
		})
		w := got.Status.ContainerStatuses[0].State.Waiting
		if w.Reason != "CreateContainerConfigError" || !strings.Contains(w.Message, `secret "creds" not found`) {
			t.Errorf("waiting state = %+v, want CreateContainerConfigError naming the Secret", w)
		}
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "default"},
			Data: map[string][]byte{"token": []byte("s3cr3t")}}); err != nil {
			t.Fatal(err)
		}
		got = waitPod(ctx, t, c, p, phaseIs(corev1.PodSucceeded))
		term := terminated(t, got)
		var env map[string]string
		if err := json.Unmarshal([]byte(term.Message), &env); err != nil {
			t.Fatalf("termination message is not the helper's env JSON: %v: %q", err, term.Message)
		}
		want := map[string]string{
			"SECRET": "s3cr3t", "NODE": "edge-0", "MEM": "536870912", "GOMEMLIMIT": "536870912",
			"IMAGE_VAR": "from-image", "HOSTNAME": "env", helperEnv: "1",
		}
		for k := range env {
			if _, ok := want[k]; !ok && k != "HOME" && k != "TMPDIR" {
				t.Errorf("the container got %s from outside its pod and image", k)
			}
		}
		delete(env, "HOME")
		delete(env, "TMPDIR")
		if diff := cmp.Diff(want, env); diff != "" {
			t.Errorf("container env (-want +got):\n%s", diff)
		}
		if term.ExitCode != 0 || term.Reason != "Completed" {
			t.Errorf("terminated = %d %s, want 0 Completed", term.ExitCode, term.Reason)
		}
	})

	t.Run("failure falls back to the log tail", func(t *testing.T) {
		p := pod("fail", "fail", func(p *corev1.Pod) {
			p.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
		})
		term := terminated(t, waitPod(ctx, t, c, p, phaseIs(corev1.PodFailed)))
		if term.ExitCode != 3 || term.Reason != "Error" {
			t.Errorf("terminated = %d %s, want 3 Error", term.ExitCode, term.Reason)
		}
		lines := strings.Split(term.Message, "\n")
		if len(lines) != 80 || lines[79] != "line 99" || lines[0] != "line 20" {
			t.Errorf("message holds %d lines from %q to %q, want the last 80 of the log", len(lines), lines[0], lines[len(lines)-1])
		}
	})

	t.Run("killed process", func(t *testing.T) {
		p := pod("killed", "sleep")
		waitPod(ctx, t, c, p, phaseIs(corev1.PodRunning))
		if err := agent.Kill("default", "killed", syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		term := terminated(t, waitPod(ctx, t, c, p, phaseIs(corev1.PodFailed)))
		if term.ExitCode != 137 || term.Reason != "Error" {
			t.Errorf("terminated = %d %s, want 137 Error", term.ExitCode, term.Reason)
		}
	})

	t.Run("memory limit", func(t *testing.T) {
		p := pod("hog", "hog", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("200Mi")}
			// GOMEMLIMIT is soft: set it high so the process really grows.
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "GOMEMLIMIT", Value: "off"}}
		})
		term := terminated(t, waitPod(ctx, t, c, p, phaseIs(corev1.PodFailed)))
		if term.ExitCode != 137 || term.Reason != "OOMKilled" {
			t.Errorf("terminated = %d %s, want 137 OOMKilled", term.ExitCode, term.Reason)
		}
	})

	t.Run("deleted pod is stopped and removed", func(t *testing.T) {
		p := pod("deleted", "sleep")
		waitPod(ctx, t, c, p, phaseIs(corev1.PodRunning))
		// Wait until it handles SIGTERM.
		if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return strings.Contains(agent.Log("default", "deleted", "main"), "sleeping"), nil
		}); err != nil {
			t.Fatalf("the container never logged: %v", err)
		}
		if err := c.Delete(ctx, p); err != nil {
			t.Fatal(err)
		}
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
			err := c.Get(ctx, client.ObjectKeyFromObject(p), &corev1.Pod{})
			return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
		})
		if err != nil {
			t.Fatalf("deleted pod still there: %v", err)
		}
	})

	if len(pids) != len(agent.Started()) || len(pids) != 5 {
		t.Errorf("OnStart saw %d processes, Started lists %d, want 5", len(pids), len(agent.Started()))
	}
}

func phaseIs(ph corev1.PodPhase) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool { return p.Status.Phase == ph }
}

func terminated(t *testing.T, p *corev1.Pod) *corev1.ContainerStateTerminated {
	t.Helper()
	if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Terminated == nil {
		t.Fatalf("pod %s has no terminated container: %+v", p.Name, p.Status.ContainerStatuses)
	}
	return p.Status.ContainerStatuses[0].State.Terminated
}

func waitPod(ctx context.Context, t *testing.T, c client.Client, p *corev1.Pod, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var got corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
			return false, err
		}
		return ok(&got), nil
	})
	if err != nil {
		t.Fatalf("pod %s: %v; status %+v", p.Name, err, got.Status)
	}
	return &got
}
