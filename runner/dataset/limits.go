package dataset

import (
	"fmt"
	"math"
	"strconv"

	"github.com/kompress/kompress/runner/fault"
)

// Limits bound what one dataset file may make the runner hold. Each is
// checked against an array's .npy header before the array is read or
// anything is allocated for it (a few compressed bytes may claim
// terabytes), so a file past them costs the bytes of its headers, not
// what they claim. The zero value means the defaults.
type Limits struct {
	// MaxBytes bounds the data of all the file's arrays together, in
	// their own element types: what the dataset holds in memory (x as
	// uint8 takes one byte a value; it is converted to float32 a batch at
	// a time when fed). 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxSamples bounds every array's first dimension: its samples (or
	// the first dimension of an array fed whole), so that per-sample
	// memory and work (labels, shuffles, batch plans) stay bounded even
	// for samples of no bytes. 0 means DefaultMaxSamples.
	MaxSamples int64
	// BytesFrom says where MaxBytes came from, for messages ("$KOMPRESS_MAX_DATASET_BYTES").
	BytesFrom string
}

const (
	// DefaultMaxBytes is 1 GiB: MNIST's 60,000 training images take
	// 47 MB as uint8, CIFAR-10's 50,000 take 154 MB.
	DefaultMaxBytes = 1 << 30
	// DefaultMaxSamples is 1,048,576 samples.
	DefaultMaxSamples = 1 << 20

	// EnvMaxBytes and EnvMaxSamples set the limits of `kompress stage`
	// and `kompress run` (LimitsFromEnv).
	EnvMaxBytes   = "KOMPRESS_MAX_DATASET_BYTES"
	EnvMaxSamples = "KOMPRESS_MAX_DATASET_SAMPLES"
	// envMemoryLimit is the stage container's memory limit in bytes,
	// which the controller passes to every stage pod.
	envMemoryLimit = "KOMPRESS_MEMORY_LIMIT"
)

// DefaultLimits are the limits when nothing sets them.
func DefaultLimits() Limits {
	return Limits{MaxBytes: DefaultMaxBytes, MaxSamples: DefaultMaxSamples}
}

// orDefault fills the fields left zero.
func (l Limits) orDefault() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes, l.BytesFrom = DefaultMaxBytes, ""
	}
	if l.MaxSamples <= 0 {
		l.MaxSamples = DefaultMaxSamples
	}
	return l
}

// LimitsFromEnv reads the limits from the environment (getenv is
// os.Getenv): $KOMPRESS_MAX_DATASET_BYTES and
// $KOMPRESS_MAX_DATASET_SAMPLES when set (positive integers). Without
// the first, a stage container with a memory limit ($KOMPRESS_MEMORY_LIMIT,
// which the controller sets from the stage's resources) lets a dataset
// take at most a quarter of it, if that is less than the default: the
// file's bytes are held too while it is read, and the model, its
// sessions and the batches need the rest. An invalid value is an error
// naming the variable.
func LimitsFromEnv(getenv func(string) string) (Limits, error) {
	l := DefaultLimits()
	positive := func(name string) (int64, bool, error) {
		s := getenv(name)
		if s == "" {
			return 0, false, nil
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v <= 0 {
			return 0, false, fmt.Errorf("$%s is %q, expected a positive number of bytes or samples", name, s)
		}
		return v, true, nil
	}
	v, ok, err := positive(EnvMaxBytes)
	if err != nil {
		return l, err
	}
	if ok {
		l.MaxBytes, l.BytesFrom = v, "$"+EnvMaxBytes
	} else if m, err := strconv.ParseInt(getenv(envMemoryLimit), 10, 64); err == nil && m > 0 && m/4 < l.MaxBytes {
		l.MaxBytes = m / 4
		l.BytesFrom = fmt.Sprintf("a quarter of the stage's memory limit of %d bytes", m)
	}
	if v, ok, err = positive(EnvMaxSamples); err != nil {
		return l, err
	} else if ok {
		l.MaxSamples = v
	}
	return l, nil
}

// FileBytes is the most an .npz file within the limits can take:
// MaxBytes of arrays, what deflate adds to data it cannot compress (5
// bytes a 64 KiB block, well under 1/64), and 1 MiB for the archive's
// and the arrays' headers. A bigger file is refused before it is read
// (storage.Client.ReadAllAtMost), so that reading a dataset never holds
// more than this of file bytes.
func (l Limits) FileBytes() int64 {
	l = l.orDefault()
	const headers = 1 << 20
	if l.MaxBytes > (math.MaxInt64-headers)/65*64 {
		return math.MaxInt64
	}
	return l.MaxBytes + l.MaxBytes/64 + headers
}

// FileTooLarge is the error for a dataset file of size bytes, past
// FileBytes.
func (l Limits) FileTooLarge(name string, size int64) error {
	l = l.orDefault()
	return fault.Badf("%s: the file is %d bytes, more than an .npz within %s can take (%d bytes)", name, size, l.bytesLimit(), l.FileBytes())
}

// bytesLimit describes MaxBytes for a message.
func (l Limits) bytesLimit() string {
	from := l.BytesFrom
	switch {
	case from != "":
		from += "; "
	case l.MaxBytes == DefaultMaxBytes:
		from = "the default; "
	}
	return fmt.Sprintf("the %d bytes a dataset may hold (%s$%s sets it)", l.MaxBytes, from, EnvMaxBytes)
}

// samplesLimit describes MaxSamples for a message.
func (l Limits) samplesLimit() string {
	return fmt.Sprintf("the %d a dataset may hold ($%s sets it)", l.MaxSamples, EnvMaxSamples)
}
