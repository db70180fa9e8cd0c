// Package storagetest runs a real S3-compatible server on loopback for
// tests: gofakes3 (in memory) behind net/http on 127.0.0.1, reached through
// the s3blob driver exactly as a user's s3:// URI would reach AWS.
//
// gofakes3 does not check credentials, so the server here verifies every
// request's AWS Signature V4 against AccessKey/SecretKey and answers 403
// InvalidAccessKeyId or SignatureDoesNotMatch otherwise, as S3 does. It can
// also fail the next N requests with a chosen status, to exercise retries.
package storagetest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// Credentials the server accepts, and the region URIs name.
const (
	AccessKey = "kompress-test-key"
	SecretKey = "kompress-test-secret"
	Region    = "us-east-1"
)

// S3 is a running server.
type S3 struct {
	// Endpoint is http://127.0.0.1:PORT.
	Endpoint string

	backend  *s3mem.Backend
	server   *http.Server
	listener net.Listener
	done     chan struct{}

	requests atomic.Int64
	mu       sync.Mutex
	failN    int
	failCode int
	loseN    int
	loseM    string
}

// StartS3 starts a server with the given buckets, points the AWS SDK's
// environment at its credentials for the rest of the test (t.Setenv: not
// for parallel tests) and stops it when the test ends.
func StartS3(t testing.TB, buckets ...string) *S3 {
	t.Helper()
	s, err := NewS3(buckets...)
	if err != nil {
		t.Fatalf("storagetest: start S3 server: %v", err)
	}
	t.Cleanup(s.Close)
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return s
}

// NewS3 starts a server with the given buckets; Close stops it. It does not
// touch the environment: pass Env() to whatever talks to it.
func NewS3(buckets ...string) (*S3, error) {
	backend := s3mem.New()
	for _, b := range buckets {
		if err := backend.CreateBucket(b); err != nil {
			return nil, fmt.Errorf("create bucket %q: %w", b, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &S3{
		Endpoint: "http://" + ln.Addr().String(),
		backend:  backend,
		listener: ln,
		done:     make(chan struct{}),
	}
	fake := gofakes3.New(backend, gofakes3.WithAutoBucket(false))
	s.server = &http.Server{Handler: s.middleware(fake.Server())}
	go func() {
		defer close(s.done)
		_ = s.server.Serve(ln)
	}()
	return s, nil
}

// Close stops the server.
func (s *S3) Close() {
	_ = s.server.Close()
	<-s.done
}

// CreateBucket adds a bucket.
func (s *S3) CreateBucket(name string) error { return s.backend.CreateBucket(name) }

// Query is the s3blob URL query that reaches this server.
func (s *S3) Query() string {
	return "endpoint=" + url.QueryEscape(s.Endpoint) + "&use_path_style=true&region=" + Region
}

// URI is the s3:// URI of key in bucket on this server.
func (s *S3) URI(bucket, key string) string {
	return "s3://" + bucket + "/" + key + "?" + s.Query()
}

// Env is the environment the AWS SDK needs to talk to this server.
func (s *S3) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Object returns an object's content straight from the backend, bypassing
// HTTP and authentication: for asserting what is really stored.
func (s *S3) Object(bucket, key string) ([]byte, error) {
	obj, err := s.backend.GetObject(bucket, key, nil)
	if err != nil {
		return nil, err
	}
	defer obj.Contents.Close()
	return io.ReadAll(obj.Contents)
}

// Put stores an object straight into the backend.
func (s *S3) Put(bucket, key string, data []byte) error {
	_, err := s.backend.PutObject(bucket, key, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil)
	return err
}

// Keys lists the keys in bucket, straight from the backend.
func (s *S3) Keys(bucket string) ([]string, error) {
	res, err := s.backend.ListBucket(bucket, nil, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, c := range res.Contents {
		keys = append(keys, c.Key)
	}
	return keys, nil
}

// FailNext makes the next n requests fail with the HTTP status code (503
// for a service that is briefly unavailable).
func (s *S3) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode = n, status
}

// LoseNext makes the server carry out the next n requests with the HTTP
// method (PUT for uploads) but answer each with 503, as when a response is
// lost on the way back: the client cannot tell whether its write happened.
func (s *S3) LoseNext(method string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseM, s.loseN = method, n
}

// Requests counts the requests the server has received.
func (s *S3) Requests() int64 { return s.requests.Load() }

func (s *S3) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if code := s.takeFailure(); code != 0 {
			// Drain the body so the client sees the response, not a reset.
			_, _ = io.Copy(io.Discard, r.Body)
			writeError(w, r, code, "ServiceUnavailable", "injected failure")
			return
		}
		if err := verifySignature(r, AccessKey, SecretKey); err != nil {
			var ae *authError
			if !errors.As(err, &ae) {
				ae = &authError{code: "AccessDenied", msg: err.Error()}
			}
			_, _ = io.Copy(io.Discard, r.Body)
			writeError(w, r, http.StatusForbidden, ae.code, ae.msg)
			return
		}
		if s.takeLoss(r.Method) {
			next.ServeHTTP(httptest.NewRecorder(), r)
			writeError(w, r, http.StatusServiceUnavailable, "ServiceUnavailable", "injected lost response")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *S3) takeLoss(method string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loseN <= 0 || method != s.loseM {
		return false
	}
	s.loseN--
	return true
}

func (s *S3) takeFailure() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failN <= 0 {
		return 0
	}
	s.failN--
	return s.failCode
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+
		`<Error><Code>%s</Code><Message>%s</Message><RequestId>storagetest</RequestId></Error>`, code, xmlEscape(msg))
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
