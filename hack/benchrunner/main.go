// Command benchrunner measures one runner step in a fresh process, so its
// time and peak memory are the step's own, against a baseline that plainly
// reads, hashes and writes the same bytes. hack/bench-runner.sh alternates
// the two and prints medians and ratios.
//
//	benchrunner gen  -params N OUT        write a MatMul-chain model of N float parameters
//	benchrunner copy IN OUT               baseline: read, sha256, write
//	benchrunner quantize-weightonly-int8 IN OUT
//	benchrunner prune-magnitude-50 IN OUT
//
// Each measuring mode prints one JSON line: {"mode","seconds","maxRSSBytes","inBytes","outBytes"}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/kompress/kompress/runner/storage"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	mode, args := os.Args[1], os.Args[2:]
	if mode == "gen" {
		fs := flag.NewFlagSet("gen", flag.ExitOnError)
		params := fs.Int64("params", 12_000_000, "float parameters")
		fs.Parse(args)
		if fs.NArg() != 1 {
			usage()
		}
		check(generate(*params, fs.Arg(0)))
		return
	}
	step, ok := steps[mode]
	if !ok || len(args) != 2 {
		usage()
	}
	ctx := context.Background()
	start := time.Now()
	in, out, err := run(ctx, step, storage.FileURI(args[0]), storage.FileURI(args[1]))
	check(err)
	report(mode, time.Since(start), in, out)
}

// run reads the input with its digest, applies step, and writes the result
// with its digest: the same I/O the runner does around a transform.
func run(ctx context.Context, step func([]byte) ([]byte, error), inURI, outURI string) (int64, int64, error) {
	data, obj, err := storage.ReadAll(ctx, inURI, "")
	if err != nil {
		return 0, 0, err
	}
	// The step owns the bytes from here, as the runner's transform owns
	// the model it loaded: holding them here would count them twice.
	result, err := step(take(&data))
	if err != nil {
		return 0, 0, err
	}
	w, err := storage.WriteBytes(ctx, outURI, result)
	return obj.Size, w.Size, err
}

func report(mode string, d time.Duration, in, out int64) {
	var ru syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"mode": mode, "seconds": d.Seconds(), "maxRSSBytes": ru.Maxrss * 1024,
		"inBytes": in, "outBytes": out,
	})
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrunner:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchrunner gen -params N OUT | benchrunner MODE IN OUT; modes:", modeNames())
	os.Exit(2)
}

// take hands over a slice, leaving nil behind.
func take(b *[]byte) []byte {
	v := *b
	*b = nil
	return v
}
