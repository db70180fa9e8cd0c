//go:build linux && cgo

package ort

/*
#include <malloc.h>
*/
import "C"

// trimCHeap hands the pages glibc's allocator holds free back to the
// system. ONNX Runtime frees a session's arenas into the C heap when the
// session closes, and glibc keeps most of them (its mmap threshold grows
// with every large block freed): the stages that open a session per
// block and per wave (SparseGPT, GPTQ) saw that retained memory grow to
// 0.3-0.4 GB of their resident set.
func trimCHeap() { C.malloc_trim(0) }
