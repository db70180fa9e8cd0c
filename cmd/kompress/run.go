package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/pipeline/jobfile"
	"github.com/kompress/kompress/runner"
	"github.com/kompress/kompress/runner/local"
)

func runCmd() *cobra.Command {
	var file, output, reportFile string
	var allowExec bool
	cmd := &cobra.Command{
		Use:   "run -f JOB.yaml",
		Short: "Run a CompressionJob on this machine, with no cluster",
		Long: `Run every stage of the CompressionJob(s) in JOB.yaml on this machine, in
order, through the same plan the controller follows. The file is defaulted
and validated exactly as the API server would. file:// and mem:// storage
work with no set-up (relative file:// paths resolve against the current
directory); s3://, gs:// and azblob:// use the usual credentials from the
environment. With spec.variants, the variants run on spec.variants.maxParallel
workers and one table lists them all, the selected one marked with "*".
Progress goes to stderr; a summary, or with -o json|yaml the
CompressionJob with the status the controller would write, goes to stdout.
--report FILE writes report.html (plots of quality against size, stages and
layers) for the job.

A dataset may hold at most $KOMPRESS_MAX_DATASET_BYTES bytes of arrays
(default 1 GiB) and $KOMPRESS_MAX_DATASET_SAMPLES samples (default
1048576): a file past them is refused (exit 65) before its arrays are
allocated.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError("-f JOB.yaml is required")
			}
			if output != "" && output != "json" && output != "yaml" {
				return usageError("-o must be json or yaml, not %q", output)
			}
			jobs, err := jobfile.ReadFile(file)
			if err != nil {
				return runner.BadTask(err)
			}
			limits, err := datasetLimits()
			if err != nil {
				return err
			}
			opts := runner.Options{AllowExec: allowExec, DatasetLimits: limits}
			var errs []error
			for _, job := range jobs {
				done, err := runJob(cmd, job, opts)
				if perr := printJob(cmd.OutOrStdout(), done, output); perr != nil {
					return perr
				}
				if reportFile != "" && done != nil {
					path := reportPath(reportFile, done, len(jobs))
					if rerr := writeLocalReport(cmd.Context(), done, path); rerr != nil {
						err = errors.Join(err, fmt.Errorf("--report: %w", rerr))
					} else {
						fmt.Fprintf(cmd.ErrOrStderr(), "kompress: wrote %s\n", path)
					}
				}
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "CompressionJob manifest (- for stdin)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "print the finished CompressionJob as json or yaml")
	cmd.Flags().BoolVar(&allowExec, "allow-exec", false, "run custom stages' commands as local processes")
	cmd.Flags().StringVar(&reportFile, "report", "", "write the job's report.html to this file")
	return cmd
}

func runJob(cmd *cobra.Command, job *v1alpha1.CompressionJob, opts runner.Options) (*v1alpha1.CompressionJob, error) {
	stderr := cmd.ErrOrStderr()
	if v := job.Spec.Variants; v != nil {
		fmt.Fprintf(stderr, "kompress: running %s (%d stages, %d variants, %d at a time)\n", job.Name, len(job.Spec.Stages), len(pipeline.Variants(v)), v.MaxParallel)
	} else {
		fmt.Fprintf(stderr, "kompress: running %s (%d stages)\n", job.Name, len(job.Spec.Stages))
	}
	bar := newProgressBar(stderr)
	defer bar.finish()
	log := slog.New(slog.NewTextHandler(bar, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts.Log, opts.Progress = log, bar.event
	return local.Run(cmd.Context(), job, opts)
}

func printJob(w io.Writer, job *v1alpha1.CompressionJob, output string) error {
	if job == nil {
		return nil
	}
	job.APIVersion, job.Kind = v1alpha1.GroupVersion.String(), "CompressionJob"
	switch output {
	case "json":
		b, err := json.MarshalIndent(job, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "yaml":
		b, err := yaml.Marshal(job)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return printSummary(w, job)
}
