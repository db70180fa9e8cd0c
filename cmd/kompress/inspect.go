package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kompress/kompress/runner"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/storage"
)

func inspectCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "inspect MODEL",
		Short: "Describe an ONNX model: opsets, inputs and outputs, operators, parameters, sparsity",
		Long: `Describe an ONNX model given as a path or a storage URI (file://, s3://,
gs://, azblob://): IR version and opsets, inputs and outputs with their
types and shapes, operator counts, parameters, non-zero parameters,
sparsity and bytes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "json" {
				return usageError("-o must be json, not %q", output)
			}
			uri := args[0]
			if !strings.Contains(uri, "://") {
				uri = storage.FileURI(uri)
			}
			data, _, err := storage.ReadAll(cmd.Context(), uri, "")
			if err != nil {
				return err
			}
			m, err := onnx.Load(data)
			if err != nil {
				return runner.BadInputf("%s is not a usable ONNX model: %w", args[0], err)
			}
			st, err := m.Stats()
			if err != nil {
				return runner.BadInputf("%s: %w", args[0], err)
			}
			if output == "json" {
				b, err := json.MarshalIndent(st, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return err
			}
			return printStats(cmd.OutOrStdout(), args[0], st)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "json for machine-readable output")
	return cmd
}

func printStats(w io.Writer, name string, st *onnx.Stats) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "model:\t%s\n", name)
	fmt.Fprintf(tw, "ir version:\t%d\n", st.IRVersion)
	fmt.Fprintf(tw, "opsets:\t%s\n", opsets(st.Opsets))
	if st.Producer != "" {
		fmt.Fprintf(tw, "producer:\t%s %s\n", st.Producer, st.ProducerVersion)
	}
	for _, in := range st.Inputs {
		fmt.Fprintf(tw, "input:\t%s %s [%s]\n", in.Name, in.DType, strings.Join(in.Shape, " "))
	}
	for _, out := range st.Outputs {
		fmt.Fprintf(tw, "output:\t%s %s [%s]\n", out.Name, out.DType, strings.Join(out.Shape, " "))
	}
	fmt.Fprintf(tw, "nodes:\t%d\n", st.Nodes)
	fmt.Fprintf(tw, "operators:\t%s\n", counts(st.Ops))
	fmt.Fprintf(tw, "parameters:\t%d (non-zero %d, sparsity %.2f%%)\n", st.Params, st.NonZero, 100*st.Sparsity)
	if st.QuantizedParams > 0 {
		fmt.Fprintf(tw, "quantized parameters:\t%d\n", st.QuantizedParams)
	}
	fmt.Fprintf(tw, "weight bytes:\t%d\n", st.WeightBytes)
	fmt.Fprintf(tw, "model bytes:\t%d\n", st.ModelBytes)
	return tw.Flush()
}

func opsets(m map[string]int64) string {
	var parts []string
	for d, v := range m {
		if d == "" {
			d = "ai.onnx"
		}
		parts = append(parts, fmt.Sprintf("%s %d", d, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
