package quantize

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/hack/modelgen"
)

// podLayers are the weights GPTQ rounds in the small decoder, by name,
// and blocks of uint4 codes (blocks of 32) for the first two of them,
// filled with a pattern that uses every code, scale bit and zero point.
func podLayers(t *testing.T) (map[string]weightSlot, map[string]*gptqBlocks) {
	t.Helper()
	m := modelgen.Decoder(modelgen.SmallDecoder)
	o, err := Options{Method: WeightOnly, Bits: 4, BlockSize: 32, Format: MatMulNBits, Algorithm: GPTQ}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	ix := newIndex(m)
	byName := map[string]weightSlot{}
	blocks := map[string]*gptqBlocks{}
	for _, s := range weightSlots(ix, o, &Report{own: map[string]bool{}}, map[string]bool{}) {
		if gptqInput(ix, s) == "" {
			continue
		}
		byName[s.weight.name] = s
		if len(blocks) == 2 {
			continue
		}
		dims := s.weight.dims()
		_, in, _ := s.layer.WeightAxes(2)
		rows, cols := int(dims[1-in]), int(dims[in])
		b := &gptqBlocks{rows: rows, cols: cols, blockSize: 32, nb: (cols + 31) / 32, t: UInt4, codes: make([]byte, rows*cols)}
		for i := range b.codes {
			b.codes[i] = byte(i*7) % 16 // uint4's lowest code is 0
		}
		for i := range rows * b.nb {
			b.params = append(b.params, Params{Scale: 0.001 * float32(i+1), ZeroPoint: int32(i % 16)})
		}
		blocks[s.weight.name] = b
	}
	if len(byName) < 3 {
		t.Fatalf("the decoder has %d weights GPTQ rounds, want more than 2", len(byName))
	}
	return byName, blocks
}

// A layer pod's partial gives index 0 back the very blocks the index
// rounded (the model is then the one layers: 1 writes), in the same bytes
// every time; a partial that does not fit the model is refused, naming
// the weight.
func TestGPTQPodPartial(t *testing.T) {
	byName, blocks := podLayers(t)
	uint4 := func(weightSlot) *QType { t := UInt4; return &t }
	int4 := func(weightSlot) *QType { t := Int4; return &t }
	encode := func() []byte {
		t.Helper()
		b, err := (&gptqHessians{blocks: blocks}).encodePod()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	enc := encode()
	if again := encode(); !bytes.Equal(enc, again) {
		t.Fatal("the same blocks encode to other bytes")
	}
	got := &gptqHessians{blocks: map[string]*gptqBlocks{}}
	if err := got.decodePod(enc, byName, 32, uint4); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(blocks, got.blocks, cmp.AllowUnexported(gptqBlocks{})); diff != "" {
		t.Errorf("blocks (-encoded +decoded):\n%s", diff)
	}

	var name string
	for n := range blocks {
		name = n
	}
	others := map[string]weightSlot{}
	for n, s := range byName {
		if n != name {
			others[n] = s
		}
	}
	tests := []struct {
		name      string
		b         []byte
		byName    map[string]weightSlot
		blockSize int
		typeOf    func(weightSlot) *QType
		held      bool
		want      string
	}{
		{"another model's weight", enc, others, 32, uint4, false, `weight "` + name + `": not one this model's GPTQ rounds`},
		{"another type", enc, byName, 32, int4, false, "uint4 blocks of 32 over"},
		{"another block size", enc, byName, 64, uint4, false, "this model's GPTQ rounds it to uint4 blocks of 64"},
		{"a weight twice", enc, byName, 32, uint4, true, "rounded by two layer indices"},
		{"cut short", enc[:len(enc)-5], byName, 32, uint4, false, "bytes left hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &gptqHessians{blocks: map[string]*gptqBlocks{}}
			if tt.held {
				g.blocks = got.blocks
			}
			err := g.decodePod(tt.b, tt.byName, tt.blockSize, tt.typeOf)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decodePod: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
