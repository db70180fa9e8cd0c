package distill

import (
	"context"
	"fmt"
	"sync"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort"
)

// ortBatch is how many samples one ONNX Runtime call takes when the
// model's batch dimension is dynamic.
const ortBatch = 256

// outputs runs a model in ONNX Runtime over n samples of x (each of
// the given sample shape) and returns its first output, flattened to
// n·k values. A model whose batch dimension is fixed (mnist-8 takes
// exactly one sample) is fed that many samples per call, calls spread
// over threads goroutines.
func outputs(ctx context.Context, name string, model []byte, x []float32, n int, sample []int, threads int) ([]float32, int, error) {
	sess, err := ort.NewSession(name, model, ort.Options{IntraOpThreads: 1})
	if err != nil {
		return nil, 0, err
	}
	defer sess.Close()
	if len(sess.Inputs) != 1 {
		return nil, 0, fmt.Errorf("%s has %d inputs; distillation feeds models with exactly one", name, len(sess.Inputs))
	}
	in := sess.Inputs[0]
	if len(in.Shape) != len(sample)+1 {
		return nil, 0, fmt.Errorf("%s input %q has shape %v; the dataset's samples are %v", name, in.Name, in.Shape, sample)
	}
	batch := ortBatch
	if in.Shape[0] > 0 {
		batch = int(in.Shape[0])
	}
	size := 1
	for _, d := range sample {
		size *= d
	}
	dims := make([]int64, 0, len(sample)+1)
	dims = append(dims, 0)
	for _, d := range sample {
		dims = append(dims, int64(d))
	}
	chunks := (n + batch - 1) / batch
	var (
		mu   sync.Mutex
		out  []float32
		k    int
		fail error
		next int
		wg   sync.WaitGroup
	)
	work := func() {
		defer wg.Done()
		buf := make([]float32, batch*size)
		for {
			mu.Lock()
			c := next
			next++
			stop := fail != nil || c >= chunks
			mu.Unlock()
			if stop || ctx.Err() != nil {
				return
			}
			start := c * batch
			m := min(batch, n-start)
			copy(buf, x[start*size:(start+m)*size])
			clear(buf[m*size:])
			d := append([]int64(nil), dims...)
			d[0] = int64(batch)
			if in.Shape[0] <= 0 {
				d[0] = int64(m)
			}
			res, err := sess.Run(map[string]*onnx.Tensor{in.Name: onnx.NewTensor(d, buf[:int(d[0])*size])})
			var vals []float32
			if err == nil {
				vals, err = res[sess.Outputs[0].Name].Float32s()
			}
			mu.Lock()
			if err != nil {
				fail = fmt.Errorf("%s: %w", name, err)
			} else if kk := len(vals) / int(d[0]); out == nil {
				k = kk
				out = make([]float32, n*k)
				copy(out[start*k:], vals[:m*k])
			} else if kk != k {
				fail = fmt.Errorf("%s output %q changes size between batches", name, sess.Outputs[0].Name)
			} else {
				copy(out[start*k:], vals[:m*k])
			}
			mu.Unlock()
		}
	}
	for i := 0; i < max(1, min(threads, chunks)); i++ {
		wg.Add(1)
		go work()
	}
	wg.Wait()
	if fail != nil {
		return nil, 0, fail
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	return out, k, nil
}
