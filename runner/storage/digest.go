package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// DigestPrefix starts every digest this package returns.
const DigestPrefix = "sha256:"

// Object is a blob that was read or written in full.
type Object struct {
	URI    string
	Digest string // sha256:<64 hex digits>
	Size   int64
}

// Digest returns the sha256:<hex> digest of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return DigestPrefix + hex.EncodeToString(sum[:])
}

func digestOf(h hash.Hash) string {
	return DigestPrefix + hex.EncodeToString(h.Sum(nil))
}

// NormalizeDigest checks a pinned digest and returns it as sha256:<hex>.
// It accepts 64 hex digits with or without the sha256: prefix; "" stays ""
// (nothing pinned).
func NormalizeDigest(d string) (string, error) {
	if d == "" {
		return "", nil
	}
	h := strings.ToLower(strings.TrimPrefix(d, DigestPrefix))
	if len(h) != 2*sha256.Size {
		return "", fmt.Errorf("digest %q: want sha256:<64 hex digits>", d)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("digest %q: want sha256:<64 hex digits>", d)
	}
	return DigestPrefix + h, nil
}

func mismatch(op, uri, want, got string) error {
	return &Error{Op: op, URI: uri, Kind: KindDigestMismatch,
		Err: fmt.Errorf("content is %s, but %s was pinned", got, want)}
}
