package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kompress/kompress/runner/storage"
)

// cleanupCmd deletes artifacts: what the controller's cleanup Job runs when
// a CompressionJob with spec.output.intermediateArtifacts: Delete goes.
func cleanupCmd() *cobra.Command {
	var uris, keep []string
	var terminationLog string
	cmd := &cobra.Command{
		Use:   "cleanup --uri URI [--uri URI...] [--keep URI...]",
		Short: "Delete artifacts from object storage (what a cleanup Job runs)",
		Long: `Delete the objects named by --uri, in the order given, stopping at the
first failure: the controller lists each intermediate stage's result.json
before its model.onnx, so a cache entry never points at a deleted model.
An object that does not exist counts as deleted, so a retry is safe.

--keep names objects that must survive (the final model and its manifests):
if any --uri is one of them, nothing is deleted and the exit code is 64.

The exit code follows the runner's: 1 when a retry may help (storage
unreachable), 77 when access is denied.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			deleted, err := cleanup(cmd, uris, keep, log)
			msg := fmt.Sprintf("deleted %d of %d objects", deleted, len(uris))
			if err != nil {
				msg += ": " + err.Error()
			}
			if werr := writeText(terminationLog, msg); werr != nil {
				log.Error("writing the termination message", "path", terminationLog, "err", werr)
			}
			return err
		},
	}
	cmd.Flags().StringArrayVar(&uris, "uri", nil, "an object to delete (repeat)")
	cmd.Flags().StringArrayVar(&keep, "keep", nil, "an object that must not be deleted (repeat)")
	cmd.Flags().StringVar(&terminationLog, "termination-log", defaultTerminationLog, "write a one-line summary here (empty: don't)")
	return cmd
}

func cleanup(cmd *cobra.Command, uris, keep []string, log *slog.Logger) (int, error) {
	if len(uris) == 0 {
		return 0, usageError("cleanup: no --uri given")
	}
	kept := map[string]bool{}
	for _, k := range keep {
		kept[k] = true
	}
	var refused []string
	for _, u := range uris {
		if kept[u] {
			refused = append(refused, u)
		}
	}
	if len(refused) > 0 {
		return 0, usageError("cleanup: refusing to delete %s: named by --keep", strings.Join(refused, ", "))
	}
	st := &storage.Client{Logger: log}
	for i, u := range uris {
		if err := st.Delete(cmd.Context(), u); err != nil {
			return i, err // a *storage.Error: its kind sets the exit code
		}
		fmt.Fprintln(cmd.OutOrStdout(), "deleted", u)
	}
	return len(uris), nil
}

// writeText writes a plain-text termination message (outside a pod the
// default path does not exist and nothing is written).
func writeText(path, msg string) error {
	if path == "" {
		return nil
	}
	if path == defaultTerminationLog {
		if _, err := os.Stat(path); err != nil {
			return nil
		}
	}
	return os.WriteFile(path, []byte(msg), 0o644)
}
