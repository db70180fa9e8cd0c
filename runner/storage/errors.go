package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"gocloud.dev/gcerrors"
	"google.golang.org/api/googleapi"
)

// Kind classifies a storage error by what the caller can do about it.
type Kind int

const (
	// KindFailure is an error of no known class: worth a retry of the
	// whole stage, not of the single call.
	KindFailure Kind = iota
	// KindTransient is a failure that may pass (5xx, throttling, a reset
	// connection); calls retry it, and it is a KindFailure once they give up.
	KindTransient
	// KindNotFound: the object, its bucket or its directory does not exist.
	KindNotFound
	// KindDenied: the credentials are missing, wrong or not allowed.
	KindDenied
	// KindInvalid: the URI or a request parameter is malformed.
	KindInvalid
	// KindExists: a write found the object already there (write-once).
	KindExists
	// KindDigestMismatch: the content is not what the pinned digest says.
	KindDigestMismatch
)

var kindNames = map[Kind]string{
	KindFailure:        "failed",
	KindTransient:      "transient failure",
	KindNotFound:       "not found",
	KindDenied:         "access denied",
	KindInvalid:        "invalid",
	KindExists:         "already exists",
	KindDigestMismatch: "digest mismatch",
}

func (k Kind) String() string { return kindNames[k] }

// Sentinels for errors.Is: errors.Is(err, storage.ErrExists) is true for
// any *Error of KindExists.
var (
	ErrNotFound       = &Error{Kind: KindNotFound}
	ErrDenied         = &Error{Kind: KindDenied}
	ErrInvalid        = &Error{Kind: KindInvalid}
	ErrExists         = &Error{Kind: KindExists}
	ErrDigestMismatch = &Error{Kind: KindDigestMismatch}
)

// Error is a failed storage operation on one URI.
type Error struct {
	Op   string // parse, open, read, stat, write, delete
	URI  string
	Kind Kind
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("storage: %s %s: %s", e.Op, e.URI, e.Kind)
	}
	return fmt.Sprintf("storage: %s %s: %s: %v", e.Op, e.URI, e.Kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the Err* sentinels by kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Op == "" && t.URI == "" && t.Err == nil && t.Kind == e.Kind
}

func invalid(op, uri string, err error) *Error {
	return &Error{Op: op, URI: uri, Kind: KindInvalid, Err: err}
}

// wrap classifies err from a driver call on uri. A *Error passes through.
func wrap(op, uri string, err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	return &Error{Op: op, URI: uri, Kind: classify(err), Err: err}
}

// KindOf returns the kind of err: that of a *Error, else a classification
// of the raw error.
func KindOf(err error) Kind {
	var se *Error
	if errors.As(err, &se) {
		return se.Kind
	}
	return classify(err)
}

// classify looks at the gocloud error code first, then at what the drivers
// leave underneath: HTTP status codes and network errors.
func classify(err error) Kind {
	if errors.Is(err, context.Canceled) {
		return KindFailure
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return KindNotFound
	case gcerrors.PermissionDenied:
		return KindDenied
	case gcerrors.InvalidArgument:
		return KindInvalid
	case gcerrors.AlreadyExists:
		return KindExists
	case gcerrors.FailedPrecondition:
		// Outside a conditional write (see isPreconditionFailed) this is a
		// request the service will never accept as made.
		return KindInvalid
	case gcerrors.Internal, gcerrors.ResourceExhausted, gcerrors.DeadlineExceeded:
		return KindTransient
	}
	if code, ok := httpStatus(err); ok && code > 0 {
		return classifyStatus(code)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return KindNotFound
	case errors.Is(err, fs.ErrPermission):
		return KindDenied
	case isNetworkTransient(err):
		return KindTransient
	}
	return KindFailure
}

func classifyStatus(code int) Kind {
	switch {
	case code == http.StatusNotFound:
		return KindNotFound
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return KindDenied
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return KindTransient
	case code == http.StatusBadRequest || code == http.StatusPreconditionFailed:
		return KindInvalid
	}
	return KindFailure
}

// httpStatus digs the HTTP status out of the error types the AWS, Azure
// and Google SDKs return.
func httpStatus(err error) (int, bool) {
	var aws interface{ HTTPStatusCode() int }
	if errors.As(err, &aws) {
		return aws.HTTPStatusCode(), true
	}
	var az *azcore.ResponseError
	if errors.As(err, &az) {
		return az.StatusCode, true
	}
	var g *googleapi.Error
	if errors.As(err, &g) {
		return g.Code, true
	}
	return 0, false
}

func isNetworkTransient(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isPreconditionFailed reports a failed conditional write: with
// WriterOptions.IfNotExist, the object already exists.
func isPreconditionFailed(err error) bool {
	if gcerrors.Code(err) == gcerrors.FailedPrecondition {
		return true
	}
	code, ok := httpStatus(err)
	return ok && code == http.StatusPreconditionFailed
}
