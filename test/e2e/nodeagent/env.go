package nodeagent

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Objects are the API objects a container's environment refers to: the Node
// the pod is bound to, and Secrets and ConfigMaps of the pod's namespace by
// name (a name missing from the map does not exist).
type Objects struct {
	Node       *corev1.Node
	Secrets    map[string]*corev1.Secret
	ConfigMaps map[string]*corev1.ConfigMap
}

// References lists the Secrets and ConfigMaps a container's env and envFrom
// name, so a caller can fetch them before ContainerEnv.
func References(c *corev1.Container) (secrets, configMaps []string) {
	for _, from := range c.EnvFrom {
		if from.SecretRef != nil {
			secrets = append(secrets, from.SecretRef.Name)
		}
		if from.ConfigMapRef != nil {
			configMaps = append(configMaps, from.ConfigMapRef.Name)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			secrets = append(secrets, r.Name)
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
			configMaps = append(configMaps, r.Name)
		}
	}
	return secrets, configMaps
}

// ContainerEnv computes the container's environment as the kubelet does:
// envFrom sources first (with their prefix; keys that are not valid names
// are skipped), then env in order, later entries overriding earlier ones.
// A plain value may refer to variables defined before it as $(NAME);
// valueFrom resolves a Secret or ConfigMap key, a pod field or a container
// resource (limits default to the Node's allocatable amount, as the kubelet
// does for a container without a limit). A missing required Secret,
// ConfigMap or key is an error, which the kubelet reports as
// CreateContainerConfigError.
func ContainerEnv(pod *corev1.Pod, c *corev1.Container, objs Objects) ([]corev1.EnvVar, error) {
	var env []corev1.EnvVar
	index := map[string]int{}
	set := func(name, value string) {
		if i, ok := index[name]; ok {
			env[i].Value = value
			return
		}
		index[name] = len(env)
		env = append(env, corev1.EnvVar{Name: name, Value: value})
	}
	lookup := func(name string) (string, bool) {
		if i, ok := index[name]; ok {
			return env[i].Value, true
		}
		return "", false
	}
	for _, from := range c.EnvFrom {
		data, err := envFromData(pod.Namespace, from, objs)
		if err != nil {
			return nil, err
		}
		for _, k := range sortedKeys(data) {
			name := from.Prefix + k
			if len(validation.IsEnvVarName(name)) == 0 {
				set(name, data[k])
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, Expand(e.Value, lookup))
			continue
		}
		v, ok, err := valueFrom(pod, c, e, objs)
		if err != nil {
			return nil, err
		}
		if ok {
			set(e.Name, v)
		}
	}
	return env, nil
}

func envFromData(namespace string, from corev1.EnvFromSource, objs Objects) (map[string]string, error) {
	switch {
	case from.SecretRef != nil:
		s := objs.Secrets[from.SecretRef.Name]
		if s == nil {
			if optional(from.SecretRef.Optional) {
				return nil, nil
			}
			return nil, fmt.Errorf("secret %q not found in namespace %s", from.SecretRef.Name, namespace)
		}
		out := map[string]string{}
		for k, v := range s.Data {
			out[k] = string(v)
		}
		return out, nil
	case from.ConfigMapRef != nil:
		cm := objs.ConfigMaps[from.ConfigMapRef.Name]
		if cm == nil {
			if optional(from.ConfigMapRef.Optional) {
				return nil, nil
			}
			return nil, fmt.Errorf("configmap %q not found in namespace %s", from.ConfigMapRef.Name, namespace)
		}
		return cm.Data, nil
	}
	return nil, nil
}

// valueFrom resolves one env var's source; ok is false when an optional
// source is missing (the variable is then not set at all).
func valueFrom(pod *corev1.Pod, c *corev1.Container, e corev1.EnvVar, objs Objects) (string, bool, error) {
	src := e.ValueFrom
	switch {
	case src.SecretKeyRef != nil:
		r := src.SecretKeyRef
		s := objs.Secrets[r.Name]
		if s == nil {
			if optional(r.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("secret %q not found in namespace %s (env %s)", r.Name, pod.Namespace, e.Name)
		}
		v, found := s.Data[r.Key]
		if !found {
			if optional(r.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in Secret %s/%s (env %s)", r.Key, pod.Namespace, r.Name, e.Name)
		}
		return string(v), true, nil
	case src.ConfigMapKeyRef != nil:
		r := src.ConfigMapKeyRef
		cm := objs.ConfigMaps[r.Name]
		if cm == nil {
			if optional(r.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("configmap %q not found in namespace %s (env %s)", r.Name, pod.Namespace, e.Name)
		}
		v, found := cm.Data[r.Key]
		if !found {
			if optional(r.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s (env %s)", r.Key, pod.Namespace, r.Name, e.Name)
		}
		return v, true, nil
	case src.FieldRef != nil:
		v, err := podField(pod, src.FieldRef.FieldPath)
		if err != nil {
			return "", false, fmt.Errorf("env %s: %w", e.Name, err)
		}
		return v, true, nil
	case src.ResourceFieldRef != nil:
		v, err := containerResource(pod, c, src.ResourceFieldRef, objs.Node)
		if err != nil {
			return "", false, fmt.Errorf("env %s: %w", e.Name, err)
		}
		return v, true, nil
	}
	return "", false, fmt.Errorf("env %s: valueFrom names no source", e.Name)
}

func optional(o *bool) bool { return o != nil && *o }

// podField is the downward API's fieldRef: the fields the kubelet supports.
func podField(pod *corev1.Pod, path string) (string, error) {
	if k, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.podIP":
		return "127.0.0.1", nil // the processes run on this host's loopback
	case "status.hostIPs", "status.podIPs":
		return "127.0.0.1", nil
	}
	return "", fmt.Errorf("fieldRef %q is not a field the downward API supports", path)
}

// subscript parses prefix['key'].
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok || !strings.HasSuffix(rest, "']") {
		return "", false
	}
	return strings.TrimSuffix(rest, "']"), true
}

// containerResource is the downward API's resourceFieldRef: the named
// request or limit divided by the divisor and rounded up, a missing limit
// being the Node's allocatable amount.
func containerResource(pod *corev1.Pod, self *corev1.Container, ref *corev1.ResourceFieldSelector, node *corev1.Node) (string, error) {
	c := self
	if ref.ContainerName != "" && ref.ContainerName != self.Name {
		c = nil
		for i := range pod.Spec.Containers {
			if pod.Spec.Containers[i].Name == ref.ContainerName {
				c = &pod.Spec.Containers[i]
			}
		}
		if c == nil {
			return "", fmt.Errorf("resourceFieldRef names container %q, which the pod does not have", ref.ContainerName)
		}
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("resourceFieldRef %q is not limits.<name> or requests.<name>", ref.Resource)
	}
	res := corev1.ResourceName(name)
	var q resource.Quantity
	if kind == "limits" {
		l, set := c.Resources.Limits[res]
		if !set && node != nil {
			l, set = node.Status.Allocatable[res]
		}
		if !set {
			return "", fmt.Errorf("resourceFieldRef %s: the container has no limit and the node no allocatable %s", ref.Resource, name)
		}
		q = l
	} else {
		q = c.Resources.Requests[res]
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	switch res {
	case corev1.ResourceCPU:
		// In thousandths, as the kubelet does: 500m / 1 rounds up to 1.
		return ceilDiv(q.MilliValue(), divisor.MilliValue()), nil
	case corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return ceilDiv(q.Value(), divisor.Value()), nil
	}
	return "", fmt.Errorf("resourceFieldRef %q: only cpu, memory and ephemeral-storage are supported", ref.Resource)
}

func ceilDiv(a, b int64) string {
	if b <= 0 {
		return "0"
	}
	return strconv.FormatInt((a+b-1)/b, 10)
}

// Expand replaces $(NAME) with the value of NAME when lookup knows it, as
// the kubelet expands env values, commands and args: "$$" is a literal "$",
// and a reference to an unknown name or an unclosed "$(" is left as written.
func Expand(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch next := s[i+1]; next {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
