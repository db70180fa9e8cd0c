package storagetest

import (
	"net/url"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// GCS is fake-gcs-server (its fakestorage package, in memory) serving the
// Cloud Storage JSON API over HTTP on 127.0.0.1. The gcsblob driver reaches
// it through STORAGE_EMULATOR_HOST, as it would reach any emulator.
type GCS struct {
	// Host is 127.0.0.1:PORT, the value of STORAGE_EMULATOR_HOST.
	Host string
	srv  *fakestorage.Server
}

// StartGCS starts a server with the given buckets, sets
// STORAGE_EMULATOR_HOST for the rest of the test and stops the server when
// the test ends. gocloud's gs:// opener reads the variable once per
// process, at its first use: start this before any gs:// URI is opened.
func StartGCS(t testing.TB, buckets ...string) *GCS {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http",
		Host:   "127.0.0.1",
		Port:   0,
		// Reads use the XML API path /BUCKET/OBJECT; without this the
		// server takes the Host header (127.0.0.1:PORT) for a bucket name.
		PublicHost: "127.0.0.1",
	})
	if err != nil {
		t.Fatalf("storagetest: start fake-gcs-server: %v", err)
	}
	t.Cleanup(srv.Stop)
	for _, b := range buckets {
		srv.CreateBucket(b)
	}
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("STORAGE_EMULATOR_HOST", u.Host)
	return &GCS{Host: u.Host, srv: srv}
}

// URI is the gs:// URI of key in bucket.
func (g *GCS) URI(bucket, key string) string { return "gs://" + bucket + "/" + key }

// Object returns an object's content straight from the server's backend.
func (g *GCS) Object(bucket, key string) ([]byte, error) {
	o, err := g.srv.GetObject(bucket, key)
	return o.Content, err
}

// Keys lists the object names in bucket, straight from the backend.
func (g *GCS) Keys(bucket string) ([]string, error) {
	objs, _, err := g.srv.ListObjects(bucket, "", "", false)
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Name)
	}
	return keys, err
}

// Put stores an object straight into the server's backend.
func (g *GCS) Put(bucket, key string, data []byte) {
	g.srv.CreateObject(fakestorage.Object{
		ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: key},
		Content:     data,
	})
}
