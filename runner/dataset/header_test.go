package dataset

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseHeader: the strict header parser reads the subset of Python
// literals NumPy writes (and what older writers wrote), keys in any
// order, and refuses anything else with a message saying what was
// expected, never a panic.
func TestParseHeader(t *testing.T) {
	tests := []struct {
		header  string
		want    npyHeader
		wantErr string
	}{
		{header: "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }   \n", want: npyHeader{descr: "<f4", shape: []int64{3, 4}}},
		{header: "{'shape': (), 'descr': '|u1', 'fortran_order': True}\n", want: npyHeader{descr: "|u1", fortran: true, shape: []int64{}}},
		{header: `{"descr": ">i8", "fortran_order": False, "shape": (5,)}` + "\n", want: npyHeader{descr: ">i8", shape: []int64{5}}},
		{header: "{'descr':'<f2','fortran_order':False,'shape':(2,3,)}\n", want: npyHeader{descr: "<f2", shape: []int64{2, 3}}},
		// Python 2's longs.
		{header: "{'descr': '<f8', 'fortran_order': False, 'shape': (3L, 4L), }\n", want: npyHeader{descr: "<f8", shape: []int64{3, 4}}},
		{header: "{\n 'descr': '<f4',\n 'fortran_order': False,\n 'shape': (0, 7)\n}\n", want: npyHeader{descr: "<f4", shape: []int64{0, 7}}},
		// Negative dims parse; the shape check refuses them with a clear
		// message.
		{header: "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n", want: npyHeader{descr: "<f4", shape: []int64{-1}}},

		{header: "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", wantErr: "does not end with a newline"},
		{header: "\n", wantErr: "expected a dict: '{', found the end of the header"},
		{header: "[1, 2]\n", wantErr: `at byte 0: expected a dict: '{', found "[1, 2]\n"`},
		{header: "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)\n", wantErr: "the dict is not closed"},
		{header: "{'descr': '<f4' 'fortran_order': False}\n", wantErr: `expected ',' or '}' after the value of "descr"`},
		{header: "{'descr' '<f4'}\n", wantErr: `expected ':' after key "descr"`},
		{header: "{descr: '<f4'}\n", wantErr: "at byte 1: expected a quoted string"},
		{header: "{'descr': '<f4}\n", wantErr: "unterminated string"},
		{header: `{'descr': '<\x66'}` + "\n", wantErr: "escape sequences in strings are not supported"},
		{header: "{'descr': '<f\u00e94'}\n", wantErr: "expected printable ASCII in a string"},
		{header: "{'descr': '<f4', 'fortran_order': false, 'shape': (3,)}\n", wantErr: "expected True or False"},
		{header: "{'descr': '<f4', 'fortran_order': False, 'shape': (3)}\n", wantErr: "shape (N) is not a tuple"},
		{header: "{'descr': '<f4', 'fortran_order': False, 'shape': [3]}\n", wantErr: "expected a tuple of dims"},
		{header: "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 'a')}\n", wantErr: "expected an integer dim"},
		{header: "{'descr': '<f4', 'fortran_order': False, 'shape': (3 4)}\n", wantErr: "expected ',' or ')' in the shape"},
		{header: "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775808,)}\n", wantErr: "does not fit in 63 bits"},
		{header: "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} x\n", wantErr: "unexpected text after the dict"},
		{header: "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'shape': (4,)}\n", wantErr: `key "shape" appears twice`},
		{header: "{'descr': '<f4', 'shape': (3,)}\n", wantErr: "key 'fortran_order' is missing"},
		{header: "{}\n", wantErr: "key 'descr' is missing"},
	}
	for _, tc := range tests {
		var h npyHeader
		err := h.parse(tc.header)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parse(%q) error %v, want %q", tc.header, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parse(%q): %v", tc.header, err)
			continue
		}
		if diff := cmp.Diff(tc.want, h, cmp.AllowUnexported(npyHeader{})); diff != "" {
			t.Errorf("parse(%q) (-want +got):\n%s", tc.header, diff)
		}
	}
}

// TestReadHeaderVersions reads the preamble of each format version and
// refuses short, long and unknown ones before reading what they claim.
func TestReadHeaderVersions(t *testing.T) {
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n"
	pre := func(major byte, n int) []byte {
		b := []byte("\x93NUMPY")
		b = append(b, major, 0)
		if major == 1 {
			return binary.LittleEndian.AppendUint16(b, uint16(n))
		}
		return binary.LittleEndian.AppendUint32(b, uint32(n))
	}
	tests := []struct {
		name     string
		data     []byte
		wantSize int64
		wantErr  string
	}{
		{"1.0", append(pre(1, len(dict)), dict...), int64(10 + len(dict)), ""},
		{"2.0", append(pre(2, len(dict)), dict...), int64(12 + len(dict)), ""},
		{"3.0 (utf-8)", append(pre(3, len(dict)), dict...), int64(12 + len(dict)), ""},
		{"empty", nil, 0, "empty, expected a .npy array"},
		{"short magic", []byte("\x93NUM"), 0, "truncated .npy preamble: 4 bytes, expected at least 10"},
		{"wrong magic", []byte("PK\x03\x04 zip"), 0, `not a .npy array: starts with "PK\x03\x04 z"`},
		{"version 1.1", append(pre(1, len(dict))[:7], 1, 0, 0), 0, ".npy format version 1.1 is not supported"},
		{"no length", pre(2, 0)[:9], 0, "truncated .npy preamble: unexpected EOF"},
		{"header past the entry", append(pre(1, 200), dict...), 0, ".npy header of 200 bytes is longer than its 68-byte entry"},
		{"header past the bound", pre(2, MaxHeaderBytes+1), 0, ".npy header of 10001 bytes is longer than the 10000 bytes a header may take"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := readHeader(bytes.NewReader(tc.data), int64(len(tc.data)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.size != tc.wantSize || h.descr != "<f4" {
				t.Errorf("header %+v, want size %d", h, tc.wantSize)
			}
		})
	}
}

func TestLimitsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Limits
		wantErr string
	}{
		{"defaults", nil, Limits{MaxBytes: DefaultMaxBytes, MaxSamples: DefaultMaxSamples}, ""},
		{"set", map[string]string{EnvMaxBytes: "5000", EnvMaxSamples: "7"}, Limits{MaxBytes: 5000, MaxSamples: 7, BytesFrom: "$KOMPRESS_MAX_DATASET_BYTES"}, ""},
		{"a quarter of a small memory limit", map[string]string{"KOMPRESS_MEMORY_LIMIT": "536870912"},
			Limits{MaxBytes: 134217728, MaxSamples: DefaultMaxSamples, BytesFrom: "a quarter of the stage's memory limit of 536870912 bytes"}, ""},
		{"a big memory limit keeps the default", map[string]string{"KOMPRESS_MEMORY_LIMIT": "68719476736"}, DefaultLimits(), ""},
		{"explicit wins over the memory limit", map[string]string{"KOMPRESS_MEMORY_LIMIT": "536870912", EnvMaxBytes: "4294967296"},
			Limits{MaxBytes: 4294967296, MaxSamples: DefaultMaxSamples, BytesFrom: "$KOMPRESS_MAX_DATASET_BYTES"}, ""},
		{"not a number", map[string]string{EnvMaxBytes: "1Gi"}, Limits{}, `$KOMPRESS_MAX_DATASET_BYTES is "1Gi", expected a positive number`},
		{"zero", map[string]string{EnvMaxSamples: "0"}, Limits{}, `$KOMPRESS_MAX_DATASET_SAMPLES is "0", expected a positive number`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LimitsFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
