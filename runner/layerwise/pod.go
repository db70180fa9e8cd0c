package layerwise

import "errors"

// ErrHandedOver is what a method returns on an index above 0 of an
// Indexed Job of layer workers once its partial is committed: index 0
// assembles the model from every index's partial and publishes it, so
// this index has nothing more to do and is done (not failed).
var ErrHandedOver = errors.New("this index handed its layers' partial to index 0, which assembles and publishes the model")

// PodRound is the round under which the layer workers that are pods
// hand their partials to index 0.
const PodRound = "layers"
