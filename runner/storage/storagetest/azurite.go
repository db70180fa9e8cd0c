package storagetest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
)

// AzuriteVersion is the npm azurite release the tests run.
const AzuriteVersion = "3.37.0"

// Azurite's well-known development account (public, documented by Microsoft).
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is an azurite-blob process serving the Azure Blob API on loopback.
type Azurite struct {
	// Host is 127.0.0.1:PORT.
	Host   string
	client *azblob.Client
}

// AzuriteBinary is where `hack/data.sh azurite` installs azurite-blob
// ($AZURITE_BLOB overrides it).
func AzuriteBinary() string {
	if p := os.Getenv("AZURITE_BLOB"); p != "" {
		return p
	}
	cache := os.Getenv("KOMPRESS_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "kompress")
	}
	return filepath.Join(cache, "azurite-"+AzuriteVersion, "node_modules", ".bin", "azurite-blob")
}

// HaveAzurite reports whether azurite-blob is installed.
func HaveAzurite() bool {
	_, err := os.Stat(AzuriteBinary())
	return err == nil
}

// StartAzurite runs azurite-blob (in memory, telemetry off) with the given
// containers, sets AZURE_STORAGE_ACCOUNT/KEY for the rest of the test and
// stops it when the test ends. gocloud's azblob:// opener reads those
// variables once per process, at its first use.
func StartAzurite(t testing.TB, containers ...string) *Azurite {
	t.Helper()
	bin := AzuriteBinary()
	if _, err := os.Stat(bin); err != nil {
		if testing.Short() {
			t.Skipf("Azurite is not installed (%s): run `hack/data.sh azurite`", bin)
		}
		t.Fatalf("Azurite is not installed (%s): run `hack/data.sh azurite` (npm azurite@%s into the cache)", bin, AzuriteVersion)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(port),
		"--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--silent")
	// Nothing should be written, but if anything is, not into the checkout.
	cmd.Dir = t.TempDir()
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr // stdout: a start-up banner
	if err := cmd.Start(); err != nil {
		t.Fatalf("start azurite-blob: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	if err := waitForPort(host, exited, 30*time.Second); err != nil {
		t.Fatalf("azurite-blob did not start: %v", err)
	}
	cred, err := azblob.NewSharedKeyCredential(AzuriteAccount, AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	client, err := azblob.NewClientWithSharedKeyCredential("http://"+host+"/"+AzuriteAccount+"/", cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range containers {
		if _, err := client.CreateContainer(context.Background(), c, nil); err != nil {
			t.Fatalf("create container %q: %v", c, err)
		}
	}
	t.Setenv("AZURE_STORAGE_ACCOUNT", AzuriteAccount)
	t.Setenv("AZURE_STORAGE_KEY", AzuriteKey)
	return &Azurite{Host: host, client: client}
}

// URI is the azblob:// URI of key in container.
func (a *Azurite) URI(container, key string) string {
	return "azblob://" + container + "/" + key + "?localemu=true&domain=" + a.Host + "&protocol=http"
}

// Keys lists the blob names in container, straight through the Azure SDK.
func (a *Azurite) Keys(container string) ([]string, error) {
	var keys []string
	pager := a.client.NewListBlobsFlatPager(container, nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			return nil, err
		}
		for _, b := range page.Segment.BlobItems {
			keys = append(keys, *b.Name)
		}
	}
	return keys, nil
}

// Put stores a blob straight through the Azure SDK.
func (a *Azurite) Put(container, key string, data []byte) error {
	_, err := a.client.UploadBuffer(context.Background(), container, key, data, nil)
	return err
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitForPort waits until host accepts connections, the process exits or
// the timeout passes.
func waitForPort(host string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("exited before listening on %s: %v", host, werr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
