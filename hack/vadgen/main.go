// Command vadgen builds the dataset Silero VAD (testdata/models/silero-vad)
// is evaluated and calibrated on, from a speech recording: a WAV file of
// 16-bit mono PCM at any rate, resampled to 16 kHz, framed into 512
// samples (32 ms) with silence before and after the speech, so that the
// model's speech probability goes from near 0 to near 1. The .npz holds
// one array per model input, named by the input: input float32 [N, 512]
// (samples in [-1, 1]), state float32 [2, 1, 128] (zeros, fed whole with
// every frame) and sr int64 scalar 16000. hack/vadgen.sh records the
// speech with espeak-ng and runs it.
//
//	vadgen -wav speech.wav -silence 0.5 -out testdata/models/silero-vad/speech.npz
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	"github.com/kompress/kompress/runner/dataset"
)

const (
	rate  = 16000
	frame = 512
)

func main() {
	wav := flag.String("wav", "", "a WAV file: 16-bit mono PCM")
	silence := flag.Float64("silence", 0.5, "seconds of faint noise before and after the speech")
	out := flag.String("out", "", "the .npz file to write")
	flag.Parse()
	if err := run(*wav, *silence, *out); err != nil {
		fmt.Fprintln(os.Stderr, "vadgen:", err)
		os.Exit(1)
	}
}

func run(path string, silence float64, out string) error {
	if path == "" || out == "" {
		return errors.New("-wav and -out are required")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	pcm, from, err := readWAV(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	speech := resample(pcm, from, rate)
	// Faint deterministic noise (about -60 dBFS) around the speech.
	r := rand.New(rand.NewPCG(1, 2))
	pad := func() []float32 {
		s := make([]float32, int(silence*rate))
		for i := range s {
			s[i] = float32(r.NormFloat64() * 1e-3)
		}
		return s
	}
	audio := append(append(pad(), speech...), pad()...)
	n := len(audio) / frame
	audio = audio[:n*frame]
	return dataset.WriteNPZFile(out,
		dataset.Array{Name: "input", Shape: []int{n, frame}, Data: audio},
		dataset.Array{Name: "state", Shape: []int{2, 1, 128}, Data: make([]float32, 2*128)},
		dataset.Array{Name: "sr", Shape: []int{}, Data: []int64{rate}},
	)
}

// readWAV returns the samples of a 16-bit mono PCM WAV file in [-1, 1)
// and its sample rate.
func readWAV(b []byte) ([]float32, int, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New("not a RIFF WAVE file")
	}
	var sampleRate int
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int(binary.LittleEndian.Uint32(b[off+4:off+8]))
		body := b[off+8 : min(len(b), off+8+size)]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, 0, errors.New("short fmt chunk")
			}
			format, channels := binary.LittleEndian.Uint16(body[0:2]), binary.LittleEndian.Uint16(body[2:4])
			bits := binary.LittleEndian.Uint16(body[14:16])
			if format != 1 || channels != 1 || bits != 16 {
				return nil, 0, fmt.Errorf("format %d, %d channels, %d bits: want PCM (1), mono, 16 bits", format, channels, bits)
			}
			sampleRate = int(binary.LittleEndian.Uint32(body[4:8]))
		case "data":
			if sampleRate == 0 {
				return nil, 0, errors.New("data before fmt")
			}
			pcm := make([]float32, len(body)/2)
			for i := range pcm {
				pcm[i] = float32(int16(binary.LittleEndian.Uint16(body[2*i:]))) / 32768
			}
			return pcm, sampleRate, nil
		}
		off += 8 + size + size%2
	}
	return nil, 0, errors.New("no data chunk")
}

// resample converts x from rate from to rate to by linear interpolation
// (speech from espeak-ng has little energy above 8 kHz).
func resample(x []float32, from, to int) []float32 {
	if from == to {
		return x
	}
	n := int(math.Floor(float64(len(x)-1) * float64(to) / float64(from)))
	out := make([]float32, n)
	for i := range out {
		pos := float64(i) * float64(from) / float64(to)
		j := int(pos)
		f := float32(pos - float64(j))
		out[i] = x[j]*(1-f) + x[j+1]*f
	}
	return out
}
