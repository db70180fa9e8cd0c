package dataset

import "bytes"

// Hooks for the external tests (package dataset_test).

// ReadNPY reads one .npy stream (the bytes of an .npz entry) within lim.
func ReadNPY(data []byte, lim Limits) (Array, error) {
	return readNPY(bytes.NewReader(data), int64(len(data)), &budget{Limits: lim.orDefault()})
}

// WriteNPY writes a as a version 1.0 .npy stream.
func WriteNPY(a Array) ([]byte, error) {
	var b bytes.Buffer
	err := writeNPY(&b, a)
	return b.Bytes(), err
}
