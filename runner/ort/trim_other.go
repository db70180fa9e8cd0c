//go:build !linux || !cgo

package ort

// trimCHeap has nothing to do where the C allocator is not glibc's.
func trimCHeap() {}
