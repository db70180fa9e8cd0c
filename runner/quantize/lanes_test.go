package quantize

// withoutAVX2 runs f with the Go code only.
func withoutAVX2(f func()) {
	defer func(v bool) { useAVX2 = v }(useAVX2)
	useAVX2 = false
	f()
}
