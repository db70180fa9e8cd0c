package eval

import (
	"fmt"

	"github.com/kompress/kompress/runner/feed"
)

// synthSeed seeds synthesized inputs: the same model always sees the same
// values, so figures are comparable between runs and between stages.
const synthSeed = 0x6b6f6d7072657373

// newData is what every run is fed: the request's dataset matched to the
// model's inputs, or synthesized inputs, and the same samples matched to
// the source's inputs (nil without a source).
func newData(req Request, sess, src *feed.Session) (data, srcData *feed.Data, err error) {
	if src != nil && len(src.Inputs()) != len(sess.Inputs()) {
		return nil, nil, fmt.Errorf("%s takes %d inputs %q but the source model %s takes %d %q: they cannot be fed the same data",
			req.name(), len(sess.Inputs()), feed.Names(sess.Inputs()), req.sourceName(), len(src.Inputs()), feed.Names(src.Inputs()))
	}
	if req.Data != nil {
		if data, err = feed.FromDataset(sess.Inputs(), req.Data); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", req.name(), err)
		}
		if data.Len() == 0 {
			return nil, nil, fmt.Errorf("%s: the dataset has no samples", req.Data.Name)
		}
		if req.Spec.Samples > 0 {
			data = data.Take(int(req.Spec.Samples))
		}
	} else if data, err = synthesize(req, sess); err != nil {
		return nil, nil, err
	}
	if src != nil {
		if srcData, err = data.For(src.Inputs()); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", req.sourceName(), err)
		}
	}
	return data, srcData, nil
}

// synthesize makes deterministic random samples for every model input,
// as Request.Inputs says by input name.
func synthesize(req Request, sess *feed.Session) (*feed.Data, error) {
	n := DefaultSynthSamples
	if req.Spec.Samples > 0 {
		n = min(n, int(req.Spec.Samples))
	}
	d, err := feed.Synthesize(sess.Inputs(), feed.Synth{Specs: req.Inputs, Samples: n, Seed: synthSeed, Field: InputsField})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.name(), err)
	}
	return d, nil
}

// InputsField names Request.Inputs in errors, as the job's spec does.
const InputsField = "evaluation.inputs"
