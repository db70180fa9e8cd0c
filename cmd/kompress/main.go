// Command kompress compresses ONNX models. `kompress run -f job.yaml` runs a
// whole CompressionJob on this machine; `kompress stage` is what every stage
// pod runs; `kompress inspect MODEL` describes a model; `kompress cp SRC DST`
// copies a model or dataset to or from object storage.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kompress:", err)
		os.Exit(runner.ExitCode(err))
	}
}

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "kompress",
		Short:         "Compress ONNX models: pruning, distillation, quantization",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       pipeline.Version,
	}
	cmd.AddCommand(runCmd(), stageCmd(), inspectCmd(), cleanupCmd(), cpCmd())
	return cmd
}

// usageError marks a command-line mistake (exit code 64).
func usageError(format string, args ...any) error {
	return runner.BadTask(fmt.Errorf(format, args...))
}
