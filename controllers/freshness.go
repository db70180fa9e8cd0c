package controllers

import (
	"context"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/api/v1alpha1"
)

// statusWrites remembers the resourceVersion of each CompressionJob's last
// status write. A reconcile may read a cached object that does not include
// that write yet: its stages look unfinished, and acting on that view could
// create again a Job that finished and was garbage-collected. Before
// creating a Job, the reconciler checks its copy is not older than its own
// last write.
type statusWrites struct {
	mu sync.Mutex
	rv map[types.NamespacedName]write
}

type write struct {
	uid types.UID
	rv  string
}

func (w *statusWrites) set(cpj *v1alpha1.CompressionJob) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.rv == nil {
		w.rv = map[types.NamespacedName]write{}
	}
	w.rv[client.ObjectKeyFromObject(cpj)] = write{cpj.UID, cpj.ResourceVersion}
}

// last is the resourceVersion of the last status write to this object.
func (w *statusWrites) last(cpj *v1alpha1.CompressionJob) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wr, ok := w.rv[client.ObjectKeyFromObject(cpj)]
	if !ok || wr.uid != cpj.UID {
		return "", false
	}
	return wr.rv, true
}

func (w *statusWrites) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.rv, key)
}

// upToDate reports whether the cached CompressionJob includes this
// manager's last status write. When it is not the copy last written, one
// metadata read from the API server settles it; a stale copy is followed by
// the event of the newer one, so the caller just stops.
func (r *CompressionJobReconciler) upToDate(ctx context.Context, cpj *v1alpha1.CompressionJob) (bool, error) {
	if rv, ok := r.writes.last(cpj); !ok || rv == cpj.ResourceVersion {
		return true, nil
	}
	live := &metav1.PartialObjectMetadata{}
	live.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("CompressionJob"))
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cpj), live); err != nil {
		return false, err
	}
	return live.ResourceVersion == cpj.ResourceVersion, nil
}
