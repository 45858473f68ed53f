package core

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"unsafe"

	"golang.org/x/crypto/sha3"
)

// Address identity: an id that is an EVM address, "0x" followed by 40 hex
// digits, names one holder (or token) whatever the case of its letters, so
// it is stored and output in one canonical form, lowercase. Every other id
// (a Solana base58 address, say, which is case-sensitive) is compared byte
// for byte. The aggregator applies the rule to every id it is given, in
// records, closes and queries.

// IsAddress reports whether id is "0x" and 40 hex digits (either case).
func IsAddress(id string) bool {
	if len(id) != 42 || id[0] != '0' || id[1] != 'x' {
		return false
	}
	for i := 2; i < 42; i++ {
		if c := id[i] | 0x20; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// needsCanon reports whether CanonicalID would change id: an address with
// an upper-case hex letter. One length compare for any other id, and five
// word tests for an address without an 'A'..'F' (the usual, lowercase one).
func needsCanon(id string) bool {
	if len(id) != 42 || id[0] != '0' || id[1] != 'x' {
		return false
	}
	b := unsafe.Slice(unsafe.StringData(id), 42) // read-only view, no copy
	if !hasUpperHex(binary.LittleEndian.Uint64(b[2:])) &&
		!hasUpperHex(binary.LittleEndian.Uint64(b[10:])) && !hasUpperHex(binary.LittleEndian.Uint64(b[18:])) &&
		!hasUpperHex(binary.LittleEndian.Uint64(b[26:])) && !hasUpperHex(binary.LittleEndian.Uint64(b[34:])) {
		return false // no upper-case hex letter: nothing to change, address or not
	}
	upper := false
	for i := 2; i < 42; i++ {
		c := id[i]
		switch {
		case c >= 'A' && c <= 'F':
			upper = true
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		default:
			return false // not an address: left as it is
		}
	}
	return upper
}

// hasUpperHex reports whether a byte of w is in 'A'..'F' (0x41..0x46): the
// "has between" test of Bit Twiddling Hacks for m = 0x40, n = 0x47 (bytes
// with the top bit set never match).
func hasUpperHex(w uint64) bool {
	const ones, low7, high = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	t := w & low7
	return (ones*(127+0x47)-t)&^w&(t+ones*(127-0x40))&high != 0
}

// CanonicalID is id in canonical form: an address in lower case, any other
// id unchanged.
func CanonicalID(id string) string {
	if !needsCanon(id) {
		return id
	}
	return strings.ToLower(id)
}

// ChecksumAddress is an address in its EIP-55 mixed-case form (a letter is
// upper case where the keccak-256 of the lowercase hex has a nibble ≥ 8);
// ok is false when id is not an address.
func ChecksumAddress(id string) (string, bool) {
	b, ok := AddressBytes(id)
	if !ok {
		return id, false
	}
	return Checksum(b), true
}

// Checksum is the EIP-55 form of the address b.
func Checksum(b [20]byte) string {
	var out [42]byte
	out[0], out[1] = '0', 'x'
	hex.Encode(out[2:], b[:])
	h := sha3.NewLegacyKeccak256()
	h.Write(out[2:])
	var sum [32]byte
	h.Sum(sum[:0])
	for i := 0; i < 40; i++ {
		nibble := sum[i/2] >> 4
		if i%2 == 1 {
			nibble = sum[i/2] & 0xf
		}
		if c := out[2+i]; c >= 'a' && nibble >= 8 {
			out[2+i] = c - 0x20
		}
	}
	return string(out[:])
}

// AddressBytes is the 20 bytes of an address; ok is false when id is not one.
func AddressBytes(id string) (b [20]byte, ok bool) {
	if !IsAddress(id) {
		return b, false
	}
	_, err := hex.Decode(b[:], []byte(id[2:]))
	return b, err == nil
}

// canonEvents returns events with every id in canonical form: events itself
// when none needs a change (the common case: one length compare per id),
// else a copy (the caller's slice is never written).
func canonEvents(events []HoldEvent) []HoldEvent {
	var out []HoldEvent
	for i := range events {
		e := &events[i]
		if !needsCanon(e.TokenID) && !needsCanon(e.HolderID) {
			continue
		}
		if out == nil {
			out = make([]HoldEvent, len(events))
			copy(out, events)
		}
		out[i].TokenID, out[i].HolderID = CanonicalID(e.TokenID), CanonicalID(e.HolderID)
	}
	if out == nil {
		return events
	}
	return out
}
