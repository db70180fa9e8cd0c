package onnx

// Hooks for the external tests (package onnx_test).

// CheckTensor and CheckSparse are the checks Load runs on every tensor.
var (
	CheckTensor = checkTensor
	CheckSparse = checkSparse
	Decodable   = decodable
)

// SetMaxDenseBytes lowers MaxDenseBytes (fuzz targets keep expansions
// small) and returns a function that restores it.
func SetMaxDenseBytes(n int64) (restore func()) {
	old := maxDenseBytes
	maxDenseBytes = n
	return func() { maxDenseBytes = old }
}
