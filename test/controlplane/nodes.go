package controlplane

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NodePool describes identical Nodes: a pool stage pods can be steered to.
type NodePool struct {
	// Name prefixes the Nodes' names: <name>-0, <name>-1...
	Name  string
	Count int
	// Labels, Taints and Capacity of every Node. Capacity is also the
	// allocatable amount; "pods" defaults to 110 and "ephemeral-storage"
	// to 100Gi (a kubelet always reports its local disk, and pods that
	// ask for some fit nowhere without it).
	Labels   map[string]string
	Taints   []corev1.Taint
	Capacity corev1.ResourceList
}

// AddNodePool creates the pool's Nodes as Ready, with their capacity,
// labels and exactly their taints. There is no kubelet behind them: the
// scheduler binds pods to them, and Kubelet functions play the rest.
func AddNodePool(ctx context.Context, c client.Client, pool NodePool) ([]corev1.Node, error) {
	var nodes []corev1.Node
	for i := 0; i < pool.Count; i++ {
		n, err := addNode(ctx, c, fmt.Sprintf("%s-%d", pool.Name, i), pool)
		if err != nil {
			return nodes, err
		}
		nodes = append(nodes, *n)
	}
	return nodes, nil
}

func addNode(ctx context.Context, c client.Client, name string, pool NodePool) (*corev1.Node, error) {
	capacity := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("100Gi")}
	for k, v := range pool.Capacity {
		capacity[k] = v.DeepCopy()
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}},
		Spec:       corev1.NodeSpec{Taints: append([]corev1.Taint(nil), pool.Taints...)},
	}
	for k, v := range pool.Labels {
		node.Labels[k] = v
	}
	if err := c.Create(ctx, node); err != nil {
		return nil, fmt.Errorf("creating Node %s: %w", name, err)
	}
	now := metav1.Now()
	status := corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity.DeepCopy(),
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "played by the test", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
	}
	// Other controllers (kube-controller-manager's, a test's node agent)
	// may write a new Node at once: both updates retry on conflict.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
		node.Status = *status.DeepCopy()
		return c.Status().Update(ctx, node)
	})
	if err != nil {
		return nil, fmt.Errorf("setting the status of Node %s: %w", name, err)
	}
	// The TaintNodesByCondition admission plugin added a not-ready taint on
	// create, and with no node-lifecycle controller nothing removes it.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
		node.Spec.Taints = append([]corev1.Taint(nil), pool.Taints...)
		return c.Update(ctx, node)
	})
	if err != nil {
		return nil, fmt.Errorf("restoring the taints of Node %s: %w", name, err)
	}
	return node, nil
}
