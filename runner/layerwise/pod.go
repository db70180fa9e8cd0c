package layerwise

import (
	"context"
	"errors"
	"fmt"

	"github.com/kompress/kompress/runner/exchange"
)

// ErrHandedOver is what a method returns on an index above 0 of an
// Indexed Job of layer workers once its partial is committed: index 0
// assembles the model from every index's partial and publishes it, so
// this index has nothing more to do and is done (not failed).
var ErrHandedOver = errors.New("this index handed its layers' partial to index 0, which assembles and publishes the model")

// PodRound is the round under which the layer workers that are pods
// hand their partials to index 0.
const PodRound = "layers"

// HandOver is one index's part in the layer pods' one round (x is the
// index): it hands index 0 this index's encoded partial, the one an
// earlier attempt committed (a retried index does not process its blocks
// again) or else mine's. On index 0 it then gives take every index's
// partial in index order and returns take's first error, naming the
// index; the other indices return ErrHandedOver.
func HandOver(ctx context.Context, x *exchange.Storage, mine func() ([]byte, error), take func(b []byte) error) error {
	shared, err := x.Shared(ctx, PodRound)
	if err != nil {
		return &exchange.Error{Round: PodRound, Err: err}
	}
	b, ok := shared[x.Index]
	if !ok {
		if b, err = mine(); err != nil {
			return err
		}
	}
	all, err := x.Hand(ctx, PodRound, b)
	if err != nil {
		return &exchange.Error{Round: PodRound, Err: err}
	}
	if x.Index != 0 {
		return ErrHandedOver
	}
	for k, b := range all {
		if err := take(b); err != nil {
			return fmt.Errorf("the partial of layer index %d of %d: %w", k, len(all), err)
		}
	}
	return nil
}
