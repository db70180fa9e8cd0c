//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Kueue runs beside the kompress manager: the CRDs of its release and its
// manager as a process with the admin's kubeconfig (hack/tools.sh kueue
// builds both into the tool cache). No admission webhook of Kueue's is
// registered with the API server: its batch/Job webhook would only suspend
// a Job that has a queue name, and the kompress controller already creates
// such Jobs suspended (controllers/job.go); Kueue's Job reconciler creates
// the Workload, admits it and unsuspends the Job.
const (
	kueueVersion   = "v0.17.0" // hack/tools.sh's KUEUE_VERSION
	kueueNamespace = "kueue-system"
	// Kueue's defaults: its certificate rotator names its Secret, and the
	// DNS name of its certificate, after them.
	kueueWebhookService = "kueue-webhook-service"
	kueueCertSecret     = "kueue-webhook-server-cert"
)

// kueueConversionCRDs are the CRDs Kueue's own manifests give a conversion
// webhook (config/components/crd/kustomization.yaml). Its certificate
// rotator injects its CA into each and is not ready until it has, so they
// must have the stanza; the API server never calls it here, as the suite
// reads and writes only the stored version (v1beta2).
var kueueConversionCRDs = []string{
	"localqueues.kueue.x-k8s.io", "clusterqueues.kueue.x-k8s.io", "workloads.kueue.x-k8s.io",
	"cohorts.kueue.x-k8s.io", "multikueueclusters.kueue.x-k8s.io",
}

// kueueConfig is Kueue's Configuration: the batch/Job integration only,
// Jobs without a queue name left alone, no leader election, no metrics or
// visibility server, and free ports for the health probes and the webhook
// server (which starts, though no webhook configuration points at it).
const kueueConfig = `apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: %s
health:
  healthProbeBindAddress: 127.0.0.1:%d
metrics:
  bindAddress: "0"
webhook:
  host: 127.0.0.1
  port: %d
  certDir: %s
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: true
  webhookServiceName: %s
  webhookSecretName: %s
manageJobsWithoutQueueName: false
integrations:
  frameworks: ["batch/job"]
featureGates:
  VisibilityOnDemand: false
`

func kueueDir() string {
	if d := os.Getenv("KOMPRESS_KUEUE"); d != "" {
		return d
	}
	return filepath.Join(cacheDir(), "kueue-"+kueueVersion)
}

// startKueue installs Kueue's CRDs and runs its manager until it is ready.
func (c *cluster) startKueue(ctx context.Context) error {
	dir := kueueDir()
	bin := filepath.Join(dir, "kueue")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("Kueue not found at %s: build it with `hack/tools.sh kueue` (make tools), or set KOMPRESS_KUEUE: %w", bin, err)
	}
	if err := installKueueCRDs(c, filepath.Join(dir, "crd")); err != nil {
		return err
	}
	// The rotator fills the Secret; it must exist, as Kueue's manifests
	// create it.
	if err := c.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kueueNamespace}}); err != nil {
		return err
	}
	if err := c.client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: kueueCertSecret, Namespace: kueueNamespace}}); err != nil {
		return err
	}
	certDir := filepath.Join(c.dir, "kueue-certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return err
	}
	health := freePort()
	cfg := filepath.Join(c.dir, "kueue-config.yaml")
	body := fmt.Sprintf(kueueConfig, kueueNamespace, health, freePort(), certDir, kueueWebhookService, kueueCertSecret)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return err
	}
	var err error
	c.kueue, err = startManagerProcess(bin, []string{"--config=" + cfg, "--kubeconfig=" + c.cp.Kubeconfig}, filepath.Join(c.dir, "kueue.log"))
	if err != nil {
		return fmt.Errorf("starting Kueue: %w", err)
	}
	c.pids.add(c.kueue.cmd.Process.Pid)
	return c.waitKueue(ctx, certDir, fmt.Sprintf("http://127.0.0.1:%d/readyz", health))
}

// installKueueCRDs installs the release's CRDs with the conversion stanza
// kueueConversionCRDs need.
func installKueueCRDs(c *cluster, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no Kueue CRDs in %s: run `hack/tools.sh kueue` (make tools)", dir)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096).Decode(crd); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, name := range kueueConversionCRDs {
			if crd.Name == name {
				crd.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{
					Strategy: apiextensionsv1.WebhookConverter,
					Webhook: &apiextensionsv1.WebhookConversion{
						ClientConfig: &apiextensionsv1.WebhookClientConfig{Service: &apiextensionsv1.ServiceReference{
							Namespace: kueueNamespace, Name: kueueWebhookService, Path: ptr.To("/convert")}},
						ConversionReviewVersions: []string{"v1"},
					},
				}
			}
		}
		crds = append(crds, crd)
	}
	_, err = envtest.InstallCRDs(c.cp.Config, envtest.CRDInstallOptions{CRDs: crds})
	return err
}

// waitKueue plays the kubelet's Secret volume for Kueue's webhook
// certificate (its rotator writes the Secret and waits for the files to
// appear in certDir) and waits for Kueue's readiness probe.
func (c *cluster) waitKueue(ctx context.Context, certDir, readyz string) error {
	mounted := false
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if c.kueue.exited() {
			return fmt.Errorf("Kueue exited at start; log:\n%s", c.kueue.tail(40))
		}
		if !mounted {
			var err error
			if mounted, err = c.mountSecret(ctx, types.NamespacedName{Namespace: kueueNamespace, Name: kueueCertSecret}, certDir); err != nil {
				return err
			}
		}
		// Before the files are there, the probe may be the certificate
		// bootstrap's, which has no readiness check.
		if resp, err := http.Get(readyz); err == nil {
			resp.Body.Close()
			if mounted && resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("Kueue's %s did not answer 200 in 90s (certificate files written: %t); log:\n%s", readyz, mounted, c.kueue.tail(40))
}

// mountSecret writes the Secret's tls.crt and tls.key into dir once it has
// both, each through a temporary file and a rename, so the reader never
// sees half a file.
func (c *cluster) mountSecret(ctx context.Context, key types.NamespacedName, dir string) (bool, error) {
	var sec corev1.Secret
	if err := c.client.Get(ctx, key, &sec); err != nil {
		return false, err
	}
	names := []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey}
	for _, n := range names {
		if len(sec.Data[n]) == 0 {
			return false, nil
		}
	}
	for _, n := range names {
		tmp := filepath.Join(dir, "."+n+".tmp")
		if err := os.WriteFile(tmp, sec.Data[n], 0o600); err != nil {
			return false, err
		}
		if err := os.Rename(tmp, filepath.Join(dir, n)); err != nil {
			return false, err
		}
	}
	return true, nil
}
