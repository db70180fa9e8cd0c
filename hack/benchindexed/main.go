// Command benchindexed prints the task of a job's first stage as a stage
// pod of the controller would get it: with task.indexed set when the stage
// runs as an Indexed Job (spec.parallelism.shards above 1, or layers
// above 1 for a hessian or GPTQ stage), so that
// hack/bench-indexed.sh can run its indices as `kompress stage`
// processes, one per pod, without a cluster.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/pipeline/jobfile"
)

func main() {
	file := flag.String("f", "", "CompressionJob manifest")
	flag.Parse()
	if err := run(*file); err != nil {
		fmt.Fprintln(os.Stderr, "benchindexed:", err)
		os.Exit(1)
	}
}

func run(file string) error {
	jobs, err := jobfile.ReadFile(file)
	if err != nil {
		return err
	}
	if len(jobs) != 1 {
		return fmt.Errorf("%s: %d jobs, want one", file, len(jobs))
	}
	job := jobs[0]
	task, err := pipeline.NewTask(job.Name, &job.Spec, 0, pipeline.SourceRef(&job.Spec), pipeline.Version)
	if err != nil {
		return err
	}
	task.Indexed = task.IndexedPods() > 1
	s, err := task.Encode()
	if err != nil {
		return err
	}
	fmt.Println(s)
	return nil
}
