package controllers

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// Policy is what the cluster admin lets a CompressionJob do beyond the
// built-in stages, from the manager's flags. Whoever may create
// CompressionJobs in a namespace gets no more power over its pods than
// this: the zero Policy runs only the runner image, as the runner
// ServiceAccount, without a token.
type Policy struct {
	// CustomStages lets Custom stages run (--custom-stages).
	CustomStages bool
	// CustomImages are the images Custom stages may run
	// (--custom-stage-images): each a prefix of the image reference
	// ("registry.example/team/") or a digest ("sha256:<64 hex>") the
	// reference must be pinned to. Empty allows none.
	CustomImages []string
	// ServiceAccounts are what spec.storage.serviceAccountName may name
	// besides the runner's (--allowed-service-accounts): "name" in any
	// namespace, or "namespace/name".
	ServiceAccounts []string
}

// Flags naming the settings in messages users read, with the chart
// values that set them.
const (
	flagCustomStages    = "--custom-stages (chart value customStages.enabled)"
	flagCustomImages    = "--custom-stage-images (chart value customStages.images)"
	flagServiceAccounts = "--allowed-service-accounts (chart value stages.allowedServiceAccounts)"
	flagNodeSelector    = "--stage-node-selector (chart value stages.nodeSelector)"
)

// Condition reasons of a CompressionJob the cluster will not run.
const (
	// ReasonUnsupportedStorage: a file:// or mem:// URI, which a stage pod
	// would read inside its own container.
	ReasonUnsupportedStorage = "UnsupportedStorage"
	// ReasonCustomStagesDisabled: a Custom stage in a cluster whose admin
	// did not enable them.
	ReasonCustomStagesDisabled = "CustomStagesDisabled"
	// ReasonImageNotAllowed: a Custom stage's image is not on the admin's
	// allowlist.
	ReasonImageNotAllowed = "ImageNotAllowed"
	// ReasonServiceAccountNotAllowed: spec.storage.serviceAccountName is
	// not one the admin allows.
	ReasonServiceAccountNotAllowed = "ServiceAccountNotAllowed"
	// ReasonPlacementNotAllowed: a node selector that changes the admin's,
	// or a toleration of the control plane's taints.
	ReasonPlacementNotAllowed = "PlacementNotAllowed"
)

// Refusal is one reason the cluster does not run a CompressionJob.
type Refusal struct {
	Reason string
	// Field is the spec path at fault, e.g. spec.stages[1].custom.image.
	Field   string
	Message string
}

// controlPlaneTaints are the taint keys that keep workloads off the
// control plane (master is the name before Kubernetes 1.24).
var controlPlaneTaints = []string{"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"}

// Admit checks a CompressionJob against what the cluster runs and what its
// admin allows, before any of its Jobs is created: storage a pod can reach,
// Custom stages and their images, the ServiceAccount, and placement within
// the admin's node pool. It returns every refusal, in spec order; none
// means the job may run.
func Admit(cpj *v1alpha1.CompressionJob, d StageDefaults, p Policy) []Refusal {
	spec := &cpj.Spec
	var out []Refusal
	out = append(out, admitStorage(spec)...)
	for i := range spec.Stages {
		st := &spec.Stages[i]
		if st.Custom == nil {
			continue
		}
		field := fmt.Sprintf("spec.stages[%d]", i)
		if !p.CustomStages {
			out = append(out, Refusal{ReasonCustomStagesDisabled, field, fmt.Sprintf(
				"stage %s is a Custom stage, and this cluster does not run Custom stages: the kompress manager runs with %s off. "+
					"Ask the cluster admin, or run the job on your machine with `kompress run --allow-exec -f FILE`", st.Name, flagCustomStages)})
			continue
		}
		if ok, why := p.imageAllowed(st.Custom.Image); !ok {
			out = append(out, Refusal{ReasonImageNotAllowed, field + ".custom.image", fmt.Sprintf(
				"%s.custom.image %q %s; the cluster admin allows Custom stage images by %s: %s",
				field, st.Custom.Image, why, flagCustomImages, listOrNone(p.CustomImages))})
		}
	}
	out = append(out, admitServiceAccount(cpj, d, p)...)
	out = append(out, admitPlacement(spec, d)...)
	return out
}

// admitPod checks what a pod of the job other than a stage's (the cleanup
// Job's) would get from the spec: its ServiceAccount and job-level
// placement.
func admitPod(cpj *v1alpha1.CompressionJob, d StageDefaults, p Policy) []Refusal {
	out := admitServiceAccount(cpj, d, p)
	if s := cpj.Spec.Scheduling; s != nil {
		out = append(out, admitLayer("spec.scheduling", s.NodeSelector, s.Tolerations, d)...)
	}
	return out
}

// refusalMessage joins refusals into one status message.
func refusalMessage(rs []Refusal) string {
	msgs := make([]string, len(rs))
	for i, r := range rs {
		msgs[i] = r.Message
	}
	return pipeline.Truncate(strings.Join(msgs, "; "), pipeline.MaxStatusMessage)
}

// admitStorage refuses file:// and mem:// URIs: in a pod they name a path
// inside the container (or the memory of one process), never the user's
// file. `kompress run` is where they work.
func admitStorage(spec *v1alpha1.CompressionJobSpec) []Refusal {
	type ref struct{ field, uri string }
	refs := []ref{{"spec.source.uri", spec.Source.URI}, {"spec.output.uri", spec.Output.URI}}
	if spec.Dataset != nil {
		refs = append(refs, ref{"spec.dataset.uri", spec.Dataset.URI})
	}
	for i, st := range spec.Stages {
		d := st.Distill
		if d == nil {
			continue
		}
		f := fmt.Sprintf("spec.stages[%d].distill", i)
		if d.Teacher != nil {
			refs = append(refs, ref{f + ".teacher.uri", d.Teacher.URI})
		}
		if d.Student != nil {
			refs = append(refs, ref{f + ".student.uri", d.Student.URI})
		}
		if d.Dataset != nil {
			refs = append(refs, ref{f + ".dataset.uri", d.Dataset.URI})
		}
	}
	var out []Refusal
	for _, r := range refs {
		scheme, _, ok := strings.Cut(r.uri, "://")
		if !ok || (scheme != "file" && scheme != "mem") {
			continue
		}
		what := "a path inside the stage pod's own container, not a file of yours"
		if scheme == "mem" {
			what = "the memory of one process, which no other stage pod can read"
		}
		out = append(out, Refusal{ReasonUnsupportedStorage, r.field, fmt.Sprintf(
			"%s is a %s:// URI, which in a cluster names %s: put it in object storage (s3://, gs://, azblob://), "+
				"or run the job on your machine with `kompress run -f FILE`, where %s:// works", r.field, scheme, what, scheme)})
	}
	return out
}

func admitServiceAccount(cpj *v1alpha1.CompressionJob, d StageDefaults, p Policy) []Refusal {
	if cpj.Spec.Storage == nil {
		return nil
	}
	name := cpj.Spec.Storage.ServiceAccountName
	if name == "" || name == d.ServiceAccount || p.serviceAccountAllowed(cpj.Namespace, name) {
		return nil
	}
	return []Refusal{{ReasonServiceAccountNotAllowed, "spec.storage.serviceAccountName", fmt.Sprintf(
		"spec.storage.serviceAccountName %s is not a ServiceAccount stage pods may run as in this cluster: they run as the runner's (%s) "+
			"or one the cluster admin allows by %s: %s", name, d.ServiceAccount, flagServiceAccounts, listOrNone(p.ServiceAccounts))}}
}

func admitPlacement(spec *v1alpha1.CompressionJobSpec, d StageDefaults) []Refusal {
	var out []Refusal
	if s := spec.Scheduling; s != nil {
		out = append(out, admitLayer("spec.scheduling", s.NodeSelector, s.Tolerations, d)...)
	}
	for i, st := range spec.Stages {
		out = append(out, admitLayer(fmt.Sprintf("spec.stages[%d]", i), st.NodeSelector, st.Tolerations, d)...)
	}
	return out
}

// admitLayer checks one layer of placement: its node selector may add
// keys to the admin's but not change their values, and no toleration may
// tolerate the control plane's taints.
func admitLayer(field string, sel map[string]string, tols []corev1.Toleration, d StageDefaults) []Refusal {
	var out []Refusal
	for _, k := range sortedStringKeys(sel) {
		if want, ok := d.NodeSelector[k]; ok && sel[k] != want {
			out = append(out, Refusal{ReasonPlacementNotAllowed, field + ".nodeSelector", fmt.Sprintf(
				"%s.nodeSelector sets %s=%s, but the cluster admin places stage pods on %s=%s by %s: a job may add node selector keys, not change the admin's",
				field, k, sel[k], k, want, flagNodeSelector)})
		}
	}
	for i, t := range tols {
		f := fmt.Sprintf("%s.tolerations[%d]", field, i)
		switch {
		case t.Key == "" && t.Operator == corev1.TolerationOpExists:
			out = append(out, Refusal{ReasonPlacementNotAllowed, f, fmt.Sprintf(
				"%s has no key and operator Exists, which tolerates every taint, the control plane's included: name the taint's key", f)})
		case containsString(controlPlaneTaints, t.Key):
			out = append(out, Refusal{ReasonPlacementNotAllowed, f, fmt.Sprintf(
				"%s tolerates the control plane's taint %s: stage pods never run on control-plane nodes", f, t.Key)})
		}
	}
	return out
}

// imageAllowed matches an image reference against the allowlist: a digest
// entry needs the reference pinned to that digest; a prefix entry matches
// the reference as written or fully qualified (docker.io/library/ for
// Docker Hub's short names), ending at a boundary ('/', ':' or '@') unless
// the entry itself ends with '/'. why says what failed.
func (p Policy) imageAllowed(image string) (bool, string) {
	if !imageRef.MatchString(image) {
		return false, "is not an image reference such as registry.example/team/tool:1.2 or registry.example/team/tool@sha256:<64 hex>"
	}
	digest := ""
	if _, d, ok := strings.Cut(image, "@"); ok {
		digest = d
	}
	forms := []string{image, qualifiedImage(image)}
	for _, e := range p.CustomImages {
		if isDigest(e) {
			if digest == e {
				return true, ""
			}
			continue
		}
		for _, f := range forms {
			if prefixAt(f, e) {
				return true, ""
			}
		}
	}
	return false, "is not on the allowlist"
}

// imageRef is the grammar of an image reference: optional registry host
// (with port), lowercase path components, optional tag, optional digest.
var imageRef = regexp.MustCompile(`^` +
	`(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?` +
	`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*` +
	`(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?` +
	`(?:@sha256:[0-9a-f]{64})?$`)

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func isDigest(s string) bool { return digestRE.MatchString(s) }

// qualifiedImage is the reference with its registry spelled out, as the
// container runtime resolves it: a first component without '.' or ':'
// (and not localhost) is a Docker Hub path, single names under library/.
func qualifiedImage(image string) string {
	first, rest, ok := strings.Cut(image, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return image
	}
	if !ok {
		return "docker.io/library/" + image
	}
	return "docker.io/" + first + "/" + rest
}

func prefixAt(s, prefix string) bool {
	if prefix == "" || !strings.HasPrefix(s, prefix) {
		return false
	}
	if strings.HasSuffix(prefix, "/") || len(s) == len(prefix) {
		return true
	}
	return strings.ContainsRune("/:@", rune(s[len(prefix)]))
}

func (p Policy) serviceAccountAllowed(namespace, name string) bool {
	for _, e := range p.ServiceAccounts {
		if e == name || e == namespace+"/"+name {
			return true
		}
	}
	return false
}

// ParsePolicyList splits a comma-separated flag value, dropping blanks.
func ParsePolicyList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Validate checks the settings: image entries are digests or prefixes of
// a reference, ServiceAccount entries are names or namespace/name, and
// Custom stages come with an allowlist.
func (p Policy) Validate() error {
	if p.CustomStages && len(p.CustomImages) == 0 {
		return fmt.Errorf("--custom-stages needs --custom-stage-images: the image prefixes (registry.example/team/) or digests (sha256:...) Custom stages may run")
	}
	for _, e := range p.CustomImages {
		if strings.HasPrefix(e, "sha256:") && !isDigest(e) {
			return fmt.Errorf("--custom-stage-images entry %q is not a digest (sha256: and 64 lowercase hex digits)", e)
		}
		if strings.ContainsAny(e, " \t\n*") {
			return fmt.Errorf("--custom-stage-images entry %q is not an image prefix: no spaces or wildcards", e)
		}
	}
	for _, e := range p.ServiceAccounts {
		ns, name, qualified := strings.Cut(e, "/")
		if !qualified {
			ns, name = "", e
		}
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return fmt.Errorf("--allowed-service-accounts entry %q: %s", e, strings.Join(errs, "; "))
		}
		if qualified {
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				return fmt.Errorf("--allowed-service-accounts entry %q: namespace: %s", e, strings.Join(errs, "; "))
			}
		}
	}
	return nil
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func containsString(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

func sortedStringKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
