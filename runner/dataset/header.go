package dataset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// The .npy format (numpy.lib.format): the magic "\x93NUMPY", a major and
// a minor version byte, the header's length (2 bytes little-endian in
// version 1.0, 4 in 2.0 and 3.0), then the header: the repr of a Python
// dict with exactly the keys 'descr', 'fortran_order' and 'shape', padded
// with spaces and ended by a newline. The array's data follows.
//
// The header is parsed here, strictly, as the subset of Python literals
// NumPy writes: keys in any order, each once, and nothing else; a
// malformed, truncated or oversized header is an error naming what was
// expected, never a panic.
const (
	npyMagic = "\x93NUMPY"
	// MaxHeaderBytes is the longest .npy header read: numpy.load's own
	// bound (max_header_size, 10,000 bytes), far more than any array
	// NumPy can write needs.
	MaxHeaderBytes = 10000
	// MaxRank is the most dimensions an array may have: NumPy's own limit.
	MaxRank = 64
)

// npyHeader is what a .npy header says about the array that follows it.
type npyHeader struct {
	major, minor int
	descr        string
	fortran      bool
	shape        []int64
	// size is the bytes of the magic, version, length and header: where
	// the data starts.
	size int64
}

// readHeader reads and parses a .npy header. max bounds the bytes the
// stream holds (the zip entry's size): a header longer than that is
// refused before it is read.
func readHeader(r io.Reader, max int64) (npyHeader, error) {
	var pre [10]byte
	if n, err := io.ReadFull(r, pre[:8]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return npyHeader{}, errors.New("empty, expected a .npy array (the magic \\x93NUMPY)")
		}
		if m := min(n, len(npyMagic)); string(pre[:m]) != npyMagic[:m] {
			return npyHeader{}, fmt.Errorf("not a .npy array: starts with %q, expected the magic \\x93NUMPY", pre[:n])
		}
		return npyHeader{}, fmt.Errorf("truncated .npy preamble: %d bytes, expected at least 10", n)
	}
	if string(pre[:6]) != npyMagic {
		return npyHeader{}, fmt.Errorf("not a .npy array: starts with %q, expected the magic \\x93NUMPY", pre[:6])
	}
	h := npyHeader{major: int(pre[6]), minor: int(pre[7])}
	var length int64
	switch {
	case h.major == 1 && h.minor == 0:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return h, fmt.Errorf("truncated .npy preamble: %w", eof(err))
		}
		length = int64(binary.LittleEndian.Uint16(pre[8:10]))
		h.size = 10
	case (h.major == 2 || h.major == 3) && h.minor == 0:
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return h, fmt.Errorf("truncated .npy preamble: %w", eof(err))
		}
		length = int64(binary.LittleEndian.Uint32(l[:]))
		h.size = 12
	default:
		return h, fmt.Errorf(".npy format version %d.%d is not supported, expected 1.0, 2.0 or 3.0", h.major, h.minor)
	}
	switch {
	case length > MaxHeaderBytes:
		return h, fmt.Errorf(".npy header of %d bytes is longer than the %d bytes a header may take", length, MaxHeaderBytes)
	case h.size+length > max:
		return h, fmt.Errorf(".npy header of %d bytes is longer than its %d-byte entry", length, max)
	}
	buf := make([]byte, length)
	if n, err := io.ReadFull(r, buf); err != nil {
		return h, fmt.Errorf("truncated .npy header: %d of %d bytes: %w", n, length, eof(err))
	}
	h.size += length
	if err := h.parse(string(buf)); err != nil {
		return h, fmt.Errorf(".npy header %s: %w", quoteHeader(buf), err)
	}
	return h, nil
}

// eof makes a short read an unexpected EOF: the stream ended before the
// bytes it declares.
func eof(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// quoteHeader quotes a header for a message, shortened: it may be 10 KB
// of anything.
func quoteHeader(b []byte) string {
	const most = 120
	s := strings.TrimRight(string(b), " \n")
	if len(s) > most {
		return fmt.Sprintf("%q... (%d bytes)", s[:most], len(b))
	}
	return fmt.Sprintf("%q", s)
}

// parse reads the header dict.
func (h *npyHeader) parse(s string) error {
	if !strings.HasSuffix(s, "\n") {
		return errors.New("does not end with a newline, as the format requires")
	}
	p := &literal{s: s}
	p.space()
	if !p.take('{') {
		return p.errorf("expected a dict: '{'")
	}
	seen := map[string]bool{}
	for {
		p.space()
		if p.take('}') {
			break
		}
		if p.i == len(s) {
			return errors.New("the dict is not closed: '}' is missing")
		}
		at := p.i
		key, err := p.str()
		if err != nil {
			return err
		}
		if seen[key] {
			return fmt.Errorf("at byte %d: key %q appears twice", at, key)
		}
		seen[key] = true
		p.space()
		if !p.take(':') {
			return p.errorf("expected ':' after key %q", key)
		}
		p.space()
		switch key {
		case "descr":
			if p.peek() == '[' {
				return p.errorf("'descr' is a list: structured (record) arrays are not supported, expected one element type such as '<f4'")
			}
			if h.descr, err = p.str(); err != nil {
				return err
			}
		case "fortran_order":
			if h.fortran, err = p.boolean(); err != nil {
				return err
			}
		case "shape":
			if h.shape, err = p.tuple(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("at byte %d: unexpected key %q, expected only 'descr', 'fortran_order' and 'shape'", at, key)
		}
		p.space()
		if p.take(',') {
			continue
		}
		if p.i == len(s) {
			return errors.New("the dict is not closed: '}' is missing")
		}
		if p.take('}') {
			break
		}
		return p.errorf("expected ',' or '}' after the value of %q", key)
	}
	p.space()
	if p.i != len(s) {
		return p.errorf("unexpected text after the dict")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return fmt.Errorf("key '%s' is missing", k)
		}
	}
	return nil
}

// literal scans the Python literals of a .npy header.
type literal struct {
	s string
	i int
}

func (p *literal) errorf(format string, args ...any) error {
	found := "the end of the header"
	if p.i < len(p.s) {
		found = fmt.Sprintf("%q", p.s[p.i:min(p.i+12, len(p.s))])
	}
	return fmt.Errorf("at byte %d: %s, found %s", p.i, fmt.Sprintf(format, args...), found)
}

func (p *literal) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *literal) take(c byte) bool {
	if p.peek() == c && p.i < len(p.s) {
		p.i++
		return true
	}
	return false
}

// space skips what Python allows between tokens.
func (p *literal) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

// str reads a quoted string of printable ASCII without escapes: every
// descr NumPy writes.
func (p *literal) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", p.errorf("expected a quoted string")
	}
	start := p.i
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return p.s[start+1 : p.i-1], nil
		case c == '\\':
			return "", p.errorf("escape sequences in strings are not supported")
		case c == '\n':
			p.i = start
			return "", p.errorf("unterminated string")
		case c < 0x20 || c > 0x7e:
			return "", p.errorf("expected printable ASCII in a string")
		}
		p.i++
	}
	p.i = start
	return "", p.errorf("unterminated string")
}

func (p *literal) boolean() (bool, error) {
	for _, b := range []struct {
		word string
		v    bool
	}{{"True", true}, {"False", false}} {
		if strings.HasPrefix(p.s[p.i:], b.word) {
			p.i += len(b.word)
			return b.v, nil
		}
	}
	return false, p.errorf("expected True or False")
}

// tuple reads a shape: (), (N,), (N, M), ... with an optional trailing
// comma after two or more dims; a single dim needs its comma, as in
// Python ((3) is not a tuple).
func (p *literal) tuple() ([]int64, error) {
	if !p.take('(') {
		return nil, p.errorf("expected a tuple of dims such as (3, 4)")
	}
	dims := []int64{}
	for {
		p.space()
		if p.take(')') {
			if len(dims) == 1 {
				return nil, errors.New("shape (N) is not a tuple: a one-dimensional shape is written (N,)")
			}
			return dims, nil
		}
		if len(dims) == MaxRank {
			return nil, fmt.Errorf("shape has more than %d dims", MaxRank)
		}
		d, err := p.integer()
		if err != nil {
			return nil, err
		}
		dims = append(dims, d)
		p.space()
		if p.take(',') {
			if p.space(); p.take(')') {
				return dims, nil
			}
			continue
		}
		if p.take(')') {
			if len(dims) == 1 {
				return nil, errors.New("shape (N) is not a tuple: a one-dimensional shape is written (N,)")
			}
			return dims, nil
		}
		return nil, p.errorf("expected ',' or ')' in the shape")
	}
}

// integer reads a decimal integer (Python 2 wrote a long as 3L).
func (p *literal) integer() (int64, error) {
	start := p.i
	neg := p.take('-')
	if p.i >= len(p.s) || p.s[p.i] < '0' || p.s[p.i] > '9' {
		p.i = start
		return 0, p.errorf("expected an integer dim")
	}
	var v uint64
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		d := uint64(p.s[p.i] - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, fmt.Errorf("at byte %d: dim %s... does not fit in 63 bits", start, p.s[start:p.i+1])
		}
		v = v*10 + d
		p.i++
	}
	p.take('L')
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}
