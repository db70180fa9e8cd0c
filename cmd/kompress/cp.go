package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kompress/kompress/runner/storage"
)

// cpCmd copies one object between a local file and object storage (or two
// stores), with the same URLs and credentials as the runner: how a model
// and its dataset get into the bucket a CompressionJob reads, and how its
// output comes back.
func cpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy a file to or from object storage (s3://, gs://, azblob://, a local path)",
		Long: `Copy one object. SRC and DST are local paths or storage URLs as in a
CompressionJob (s3://BUCKET/KEY?endpoint=...&region=..., gs://, azblob://),
read with the runner's credentials from the environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, ...). The content is streamed, not held in memory.
Objects are written once: a DST that already holds the same bytes is left
as it is, one that holds other bytes is an error. Prints the sha256 digest,
the value spec.source.sha256 pins.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := toURI(args[0]), toURI(args[1])
			ctx := cmd.Context()
			written, err := copyObject(ctx, args[0], src, dst)
			if errors.Is(err, storage.ErrExists) {
				have, err := digestOf(ctx, src)
				if err != nil {
					return err
				}
				there, err := digestOf(ctx, dst)
				if err != nil {
					return err
				}
				if there != have {
					return fmt.Errorf("%s already holds other bytes (%s, not %s of %s): objects are never overwritten", args[1], there, have, args[0])
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s already holds %s (%s)\n", args[1], args[0], have)
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %s to %s (%d bytes, %s)\n", args[0], args[1], written.Size, written.Digest)
			return nil
		},
	}
}

// copyObject streams src (given as arg) to dst, write-once. A local source
// is opened as a file, which lets storage.Write rewind and retry a failed
// upload.
func copyObject(ctx context.Context, arg, src, dst string) (storage.Object, error) {
	var r io.ReadCloser
	var err error
	if isLocal(arg) {
		r, err = os.Open(arg)
	} else {
		r, err = storage.Read(ctx, src, "")
	}
	if err != nil {
		return storage.Object{}, err
	}
	defer r.Close()
	return storage.Write(ctx, dst, r)
}

// digestOf reads uri to its end and returns its sha256:<hex> digest.
func digestOf(ctx context.Context, uri string) (string, error) {
	r, err := storage.Read(ctx, uri, "")
	if err != nil {
		return "", err
	}
	defer r.Close()
	if _, err := io.Copy(io.Discard, r); err != nil {
		return "", err
	}
	return r.Digest(), nil
}

// isLocal tells a local path from a storage URL.
func isLocal(arg string) bool { return !strings.Contains(arg, "://") }

// toURI turns a local path into a file:// URL and keeps URLs as they are.
func toURI(arg string) string {
	if isLocal(arg) {
		return storage.FileURI(arg)
	}
	return arg
}
