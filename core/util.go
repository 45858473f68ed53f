package core

import (
	"strconv"
	"unsafe"
)

func itoa(i int) string     { return strconv.Itoa(i) }
func itoa64(i int64) string { return strconv.FormatInt(i, 10) }

// unsafeString views b as a string without copying. The caller guarantees b
// is not modified while the string is in use, and never stores the string
// beyond that (the aggregator clones ids before keeping them).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// unsafeBytes views s as bytes without copying; the caller must not write
// to them.
func unsafeBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
