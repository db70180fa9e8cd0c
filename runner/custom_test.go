package runner

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/storage"
)

// TestMain lets this test binary play a custom stage image: with
// KOMPRESS_TEST_CUSTOM set it follows the custom-stage contract (read the
// task from $KOMPRESS_TASK, write the model and result.json) and exits.
func TestMain(m *testing.M) {
	switch os.Getenv("KOMPRESS_TEST_CUSTOM") {
	case "":
		os.Exit(m.Run())
	case "fail":
		fmt.Fprintln(os.Stderr, "custom stage: refusing this model")
		os.Exit(pipeline.ExitBadInput)
	case "killed":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	default:
		os.Exit(fakeCustomStage())
	}
}

// fakeCustomStage copies the input model to the output, as an identity
// transform, and writes the result a custom image must write.
func fakeCustomStage() int {
	ctx := context.Background()
	task, err := pipeline.DecodeTask([]byte(os.Getenv(pipeline.TaskEnv)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return pipeline.ExitUsage
	}
	model, _, err := storage.ReadAll(ctx, task.Input.URI, task.Input.Digest)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	obj, err := storage.WriteBytes(ctx, task.OutputURI, model)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	res := pipeline.Result{
		Version: pipeline.ContractVersion, Stage: task.Stage.Name, CacheKey: task.CacheKey,
		Output: &v1alpha1.Artifact{URI: task.OutputURI, Digest: obj.Digest, SizeBytes: obj.Size, Metrics: map[string]string{"custom": "1"}},
	}
	body, _ := res.Encode()
	if _, err := storage.WriteBytes(ctx, task.ResultURI(), body); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func customStage(mode string) v1alpha1.Stage {
	return v1alpha1.Stage{Name: "mine", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom, Custom: &v1alpha1.CustomSpec{
		Image: "example.com/team/recipe:v1", Command: []string{os.Args[0]},
		Env: []v1alpha1.CustomEnvVar{{Name: "KOMPRESS_TEST_CUSTOM", Value: mode}},
	}}}
}

func TestCustomStageRunsLocallyOnlyWhenAllowed(t *testing.T) {
	ctx := context.Background()
	spec, _ := fixture(t, customStage("identity"))
	task := firstTask(t, spec)

	_, err := Execute(ctx, task, Options{})
	if ExitCode(err) != pipeline.ExitUsage || !strings.Contains(err.Error(), "--allow-exec") {
		t.Fatalf("without AllowExec: err %v (exit %d), want a usage error naming --allow-exec", err, ExitCode(err))
	}
	if ok, _ := storage.Exists(ctx, task.OutputURI); ok {
		t.Fatal("a refused custom stage wrote a model")
	}

	res, err := Execute(ctx, task, Options{AllowExec: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Validate(task); err != nil {
		t.Fatal(err)
	}
	if res.Output.Metrics["custom"] != "1" {
		t.Errorf("result does not come from the custom stage: %+v", res.Output)
	}
}

func TestCustomStageExitCodeIsKept(t *testing.T) {
	tests := []struct {
		mode, reason, message string
		code                  int
	}{
		{"fail", "BadInput", "exited with code 65", pipeline.ExitBadInput},
		// A killed command has no exit code: retry it.
		{"killed", "StageFailed", "signal: killed", pipeline.ExitFailure},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			spec, _ := fixture(t, customStage(tc.mode))
			res, err := Execute(context.Background(), firstTask(t, spec), Options{AllowExec: true})
			if ExitCode(err) != tc.code || res.Reason != tc.reason || !strings.Contains(res.Message, tc.message) {
				t.Fatalf("exit %d, reason %q, message %q; want %d, %s, a message with %q", ExitCode(err), res.Reason, res.Message, tc.code, tc.reason, tc.message)
			}
		})
	}
}
