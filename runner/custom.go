package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

func init() {
	register(v1alpha1.StageTypeCustom, Stage{Describe: describeCustom, Execute: runCustom})
}

func describeCustom(s pipeline.StageSpec) string { return "image=" + s.Custom.Image }

// runCustom runs a Custom stage's command as a local process, the way its
// container would run in a pod: the task in KOMPRESS_TASK, the model and
// result.json written by the command itself under the task's output URI.
// Running arbitrary commands is opt-in (Options.AllowExec).
func runCustom(ctx context.Context, task pipeline.Task, o *Options) (pipeline.Result, error) {
	c := task.Stage.Custom
	if !o.AllowExec {
		return pipeline.Result{}, BadTask(fmt.Errorf("stage %s is a custom stage (image %s): locally its command runs as a process on this machine only with --allow-exec", task.Stage.Name, c.Image))
	}
	if len(c.Command) == 0 {
		return pipeline.Result{}, BadTask(fmt.Errorf("stage %s: custom.command is required to run locally: outside a container the image's entrypoint is unknown", task.Stage.Name))
	}
	enc, err := task.Encode()
	if err != nil {
		return pipeline.Result{}, err
	}
	cmd := exec.CommandContext(ctx, c.Command[0], append(c.Command[1:], c.Args...)...)
	cmd.Env = append(os.Environ(), pipeline.TaskEnv+"="+enc)
	for _, e := range c.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	o.Log.Info("running custom stage command", "stage", task.Stage.Name, "command", c.Command)
	if err := cmd.Run(); err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			code := ee.ExitCode()
			if code < 0 {
				// Killed by a signal (the OOM killer, cancellation): no
				// exit code to pass on (-1 would exit 255), and worth a retry.
				return pipeline.Result{}, &Error{Code: pipeline.ExitFailure, Reason: pipeline.ExitReason(pipeline.ExitFailure), Err: fmt.Errorf("custom command %q did not exit: %v", c.Command[0], ee)}
			}
			return pipeline.Result{}, &Error{Code: code, Reason: pipeline.ExitReason(int32(code)), Err: fmt.Errorf("custom command %q exited with code %d", c.Command[0], code)}
		}
		return pipeline.Result{}, BadTask(fmt.Errorf("custom command %q did not start: %w", c.Command[0], err))
	}
	res, ok, err := cachedResult(ctx, task, task, o.Storage)
	if err != nil {
		return res, err
	}
	if !ok {
		return res, &Error{Code: pipeline.ExitBadInput, Reason: "InvalidResult", Err: fmt.Errorf("custom command exited 0 but wrote no result at %s", task.ResultURI())}
	}
	res.Cached = false
	return res, nil
}
