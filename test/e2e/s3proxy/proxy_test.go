package s3proxy_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kompress/kompress/runner/storage"
	"github.com/kompress/kompress/runner/storage/storagetest"
	"github.com/kompress/kompress/test/e2e/s3proxy"
)

func uri(p *s3proxy.Proxy, key string) string {
	return "s3://models/" + key + "?endpoint=" + url.QueryEscape(p.Endpoint) + "&use_path_style=true&region=" + storagetest.Region
}

func TestProxy(t *testing.T) {
	s3 := storagetest.StartS3(t, "models")
	p, err := s3proxy.Start(s3.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	st := &storage.Client{Retry: storage.Retry{Attempts: 2, Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}}
	ctx := context.Background()

	t.Run("passes requests through with their signature", func(t *testing.T) {
		if _, err := st.WriteBytes(ctx, uri(p, "a/model.onnx"), []byte("weights")); err != nil {
			t.Fatal(err)
		}
		got, err := s3.Object("models", "a/model.onnx")
		if err != nil || string(got) != "weights" {
			t.Fatalf("stored %q, %v", got, err)
		}
	})

	t.Run("down resets connections, up serves again", func(t *testing.T) {
		p.SetDown(true)
		_, err := st.Exists(ctx, uri(p, "a/model.onnx"))
		if err == nil {
			t.Fatal("Exists through a proxy that is down succeeded")
		}
		if p.Resets() == 0 {
			t.Error("no connection was reset")
		}
		p.SetDown(false)
		ok, err := st.Exists(ctx, uri(p, "a/model.onnx"))
		if err != nil || !ok {
			t.Fatalf("Exists after the proxy came back = %t, %v", ok, err)
		}
	})

	t.Run("a held upload whose client goes away leaves nothing", func(t *testing.T) {
		hold := p.HoldUploads(func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/b/model.onnx")
		})
		body := bytes.Repeat([]byte("0123456789"), 10000)
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := st.WriteBytes(wctx, uri(p, "b/model.onnx"), body)
			done <- err
		}()
		select {
		case <-hold.Held():
		case <-time.After(20 * time.Second):
			t.Fatal("the upload was never held")
		}
		cancel() // the writer dies mid-upload
		if err := <-done; err == nil {
			t.Fatal("a write cancelled mid-upload succeeded")
		}
		time.Sleep(200 * time.Millisecond)
		if _, err := s3.Object("models", "b/model.onnx"); err == nil {
			t.Fatal("a half-written object is visible")
		}
		// Released, the rest of the body may still arrive from socket
		// buffers: then the object is complete, never partial.
		hold.Release(p)
		time.Sleep(200 * time.Millisecond)
		if got, err := s3.Object("models", "b/model.onnx"); err == nil && !bytes.Equal(got, body) {
			t.Fatalf("a partial object of %d bytes (want %d) is visible", len(got), len(body))
		}
		if _, err := st.WriteBytes(ctx, uri(p, "b/model.onnx"), body); err != nil && !errors.Is(err, storage.ErrExists) {
			t.Fatal(err)
		}
		got, err := s3.Object("models", "b/model.onnx")
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("after release: %d bytes stored (want %d), %v", len(got), len(body), err)
		}
	})
}
