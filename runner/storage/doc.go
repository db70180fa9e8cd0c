// Package storage reads and writes model and dataset blobs in object storage
// through gocloud.dev/blob, hashing every byte with sha256 on the way.
//
// A URI names one object: a bucket URL, a key and the bucket's query.
//
//	s3://BUCKET/dir/model.onnx?endpoint=http://127.0.0.1:9000&use_path_style=true&region=us-east-1
//	gs://BUCKET/dir/model.onnx
//	azblob://CONTAINER/dir/model.onnx?localemu=true&domain=127.0.0.1:10000&protocol=http
//	file:///abs/dir/model.onnx      an absolute path
//	file://./dir/model.onnx         a path relative to the current directory
//	mem://BUCKET/dir/model.onnx     in-process memory, shared by the whole process
//
// The query stays on the bucket URL (it configures the driver); the path is
// the key. file:// URIs take no query: the directory holding the file is the
// bucket, files are written through a temporary file next to the target and
// renamed on success, and no ".attrs" sidecar files are written.
//
// Credentials come from the environment as each driver expects:
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and the rest of the AWS SDK's
// chain), GOOGLE_APPLICATION_CREDENTIALS or STORAGE_EMULATOR_HOST,
// AZURE_STORAGE_ACCOUNT / AZURE_STORAGE_KEY (or other azidentity settings).
// This package never logs them.
//
// Writes are write-once: an existing object is never replaced, and a write
// that fails or is cancelled leaves nothing at the URI. Errors are *Error
// values classified by Kind; transient ones are retried with bounded
// exponential backoff, and ExitCode maps any error to the runner's exit code.
package storage
