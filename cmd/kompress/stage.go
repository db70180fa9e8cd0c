package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner"
	"github.com/kompress/kompress/runner/dataset"
)

const defaultTerminationLog = "/dev/termination-log"

func stageCmd() *cobra.Command {
	var taskFile, terminationLog, validateResult string
	var allowExec bool
	cmd := &cobra.Command{
		Use:   "stage",
		Short: "Run one stage task (what a stage pod runs)",
		Long: `Run one stage task: read the input model, transform it, measure it with
ONNX Runtime and publish the model and result.json write-once under the
task's cache key. The task comes from $KOMPRESS_TASK or --task FILE. The
compact result is written to the termination message file; the exit code
says whether a retry can help (64 bad task, 65 bad input, 66 an input or
the output bucket not found, 77 access denied, 1 worth a retry).

A dataset may hold at most $KOMPRESS_MAX_DATASET_BYTES bytes of arrays
(default 1 GiB, or a quarter of the container's memory limit when that is
less) and $KOMPRESS_MAX_DATASET_SAMPLES samples (default 1048576): a file
past them is refused (exit 65) before its arrays are allocated.

With --validate-result FILE, check a result.json a custom stage image would
write (against the task too, when one is given) and exit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if validateResult != "" {
				return validateResultFile(cmd, validateResult, taskFile)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			// The controller learns why from the termination message.
			refuse := func(err error) error {
				res := pipeline.Result{Version: pipeline.ContractVersion, Reason: runner.Reason(err), Message: err.Error()}
				if werr := writeTermination(terminationLog, res); werr != nil {
					log.Error("writing the termination message", "path", terminationLog, "err", werr)
				}
				return err
			}
			task, err := readTask(taskFile)
			if err != nil {
				return refuse(err)
			}
			limits, err := datasetLimits()
			if err != nil {
				return refuse(err)
			}
			index, wait, err := shardEnv(task)
			if err != nil {
				return refuse(err)
			}
			applyMemoryLimit()
			res, err := runner.Execute(cmd.Context(), task, runner.Options{
				Log: log, AllowExec: allowExec, DatasetLimits: limits,
				Progress: throttledLog(log), ShardIndex: index, ShardWait: wait,
			})
			if werr := writeTermination(terminationLog, res); werr != nil {
				log.Error("writing the termination message", "path", terminationLog, "err", werr)
			}
			if err == nil && res.Output == nil {
				log.Info("stage index done", "message", res.Message)
			} else if err == nil {
				log.Info("stage done", "output", res.Output.URI, "digest", res.Output.Digest, "bytes", res.Output.SizeBytes, "cached", res.Cached)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&taskFile, "task", "", "read the task from this JSON file instead of $"+pipeline.TaskEnv)
	cmd.Flags().StringVar(&terminationLog, "termination-log", defaultTerminationLog, "write the compact result here (empty: don't)")
	cmd.Flags().StringVar(&validateResult, "validate-result", "", "check this result.json and exit")
	cmd.Flags().BoolVar(&allowExec, "allow-exec", false, "run a custom stage's command as a local process")
	return cmd
}

func readTask(file string) (pipeline.Task, error) {
	var data []byte
	var err error
	switch {
	case file != "":
		if data, err = os.ReadFile(file); err != nil {
			return pipeline.Task{}, usageError("--task: %v", err)
		}
	case os.Getenv(pipeline.TaskEnv) != "":
		data = []byte(os.Getenv(pipeline.TaskEnv))
	default:
		return pipeline.Task{}, usageError("no task: set $%s or pass --task FILE", pipeline.TaskEnv)
	}
	task, err := pipeline.DecodeTask(data)
	if err != nil {
		return task, runner.BadTask(err)
	}
	return task, nil
}

// writeTermination writes the compact result where the kubelet reads the
// termination message. Outside a pod the default path does not exist and
// nothing is written.
func writeTermination(path string, res pipeline.Result) error {
	if path == "" {
		return nil
	}
	if path == defaultTerminationLog {
		if _, err := os.Stat(path); err != nil {
			return nil
		}
	}
	msg, err := res.TerminationMessage()
	if err != nil {
		return err
	}
	return os.WriteFile(path, msg, 0o644)
}

// shardEnv reads which index of an Indexed Job this pod is (the Job
// controller sets JOB_COMPLETION_INDEX) for a task that says it is one,
// and how long to wait for the other indices ($KOMPRESS_SHARD_WAIT, a Go
// duration; exchange.DefaultWait when unset).
func shardEnv(task pipeline.Task) (int, time.Duration, error) {
	if !task.Indexed {
		return 0, 0, nil
	}
	v := os.Getenv(jobCompletionIndex)
	index, err := strconv.Atoi(v)
	if err != nil || index < 0 || index >= task.IndexedPods() {
		return 0, 0, usageError("task.indexed is set and $%s is %q: want the pod's index in [0, %d) (the Job must be an Indexed Job)", jobCompletionIndex, v, task.IndexedPods())
	}
	var wait time.Duration
	if w := os.Getenv(shardWaitEnv); w != "" {
		if wait, err = time.ParseDuration(w); err != nil || wait <= 0 {
			return 0, 0, usageError("$%s is %q: want a positive duration such as 30m", shardWaitEnv, w)
		}
	}
	return index, wait, nil
}

// The environment of an index of an Indexed Job.
const (
	jobCompletionIndex = "JOB_COMPLETION_INDEX"
	shardWaitEnv       = "KOMPRESS_SHARD_WAIT"
)

// datasetLimits reads the dataset limits from the environment
// (dataset.LimitsFromEnv); a malformed value is a usage error.
func datasetLimits() (dataset.Limits, error) {
	l, err := dataset.LimitsFromEnv(os.Getenv)
	if err != nil {
		return l, usageError("%v", err)
	}
	return l, nil
}

func validateResultFile(cmd *cobra.Command, file, taskFile string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return usageError("--validate-result: %v", err)
	}
	res, err := pipeline.DecodeResult(data)
	if err != nil {
		return runner.BadInputf("%s: %w", file, err)
	}
	if taskFile != "" || os.Getenv(pipeline.TaskEnv) != "" {
		task, err := readTask(taskFile)
		if err != nil {
			return err
		}
		if err := res.Validate(task); err != nil {
			return runner.BadInputf("%s does not answer the task: %w", file, err)
		}
	} else if err := res.ValidateShape(); err != nil {
		return runner.BadInputf("%s: %w", file, err)
	}
	if _, err := res.TerminationMessage(); err != nil {
		return runner.BadInputf("%s: %w", file, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: a valid %s result for stage %s\n", file, pipeline.ContractVersion, res.Stage)
	return nil
}
