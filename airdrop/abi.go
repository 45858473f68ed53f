// Package airdrop turns exact per-holder amounts into what a reward
// distribution publishes: merkle trees with proofs in the formats claim
// contracts verify (OpenZeppelin's StandardMerkleTree "standard-v1" and the
// Uniswap merkle-distributor's JSON). It is pure Go over core's exact
// integers; hashing is golang.org/x/crypto/sha3's legacy Keccak-256.
package airdrop

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/holiman/uint256"
	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// ABI encoding (Solidity's abi.encode) of the value types a leaf uses.
// Values are strings, as in the JSON the trees are dumped to: an address in
// hex, an integer in decimal (or 0x hex), a bool as true/false, bytesN in
// hex, a string as it is. Static types take one 32-byte word; string and
// bytes are dynamic (an offset in the head, length and data in the tail).

// abiType is one parsed leaf type.
type abiType struct {
	name    string // as written, e.g. "uint256"
	kind    byte   // 'a' address, 'u' uintN, 'i' intN, 'b' bool, 'f' bytesN, 's' string, 'd' bytes
	bits    int    // uintN/intN width, bytesN length
	dynamic bool
}

func parseType(t string) (abiType, error) {
	a := abiType{name: t}
	switch {
	case t == "address":
		a.kind = 'a'
	case t == "bool":
		a.kind = 'b'
	case t == "string":
		a.kind, a.dynamic = 's', true
	case t == "bytes":
		a.kind, a.dynamic = 'd', true
	case strings.HasPrefix(t, "uint") || strings.HasPrefix(t, "int"):
		a.kind = 'u'
		rest := strings.TrimPrefix(t, "uint")
		if strings.HasPrefix(t, "int") {
			a.kind, rest = 'i', strings.TrimPrefix(t, "int")
		}
		a.bits = 256
		if rest != "" {
			n, err := strconv.Atoi(rest)
			if err != nil || n < 8 || n > 256 || n%8 != 0 {
				return a, fmt.Errorf("leaf type %q: want uintN/intN with N a multiple of 8 in [8, 256]", t)
			}
			a.bits = n
		}
	case strings.HasPrefix(t, "bytes"):
		n, err := strconv.Atoi(strings.TrimPrefix(t, "bytes"))
		if err != nil || n < 1 || n > 32 {
			return a, fmt.Errorf("leaf type %q: want bytesN with N in [1, 32]", t)
		}
		a.kind, a.bits = 'f', n
	default:
		return a, fmt.Errorf("leaf type %q is not supported (address, bool, uintN, intN, bytesN, string, bytes)", t)
	}
	return a, nil
}

// word encodes a static value into one 32-byte word.
func (a abiType) word(v string, dst *[32]byte) error {
	*dst = [32]byte{}
	switch a.kind {
	case 'a':
		b, ok := core.AddressBytes(v)
		if !ok {
			return fmt.Errorf("%q is not an address (0x and 40 hex digits)", v)
		}
		copy(dst[12:], b[:])
	case 'b':
		switch v {
		case "true":
			dst[31] = 1
		case "false":
		default:
			return fmt.Errorf("%q is not a bool (true or false)", v)
		}
	case 'u', 'i':
		if a.kind == 'u' && a.bits == 256 && len(v) <= 77 && (v == "0" || len(v) > 0 && v[0] != '0' && digits(v)) {
			// The common case (a uint256 amount in decimal) without big.Int.
			var u uint256.Int
			if u.SetFromDecimal(v) == nil {
				*dst = u.Bytes32()
				return nil
			}
		}
		n, ok := parseInt(v)
		if !ok {
			return fmt.Errorf("%q is not an integer", v)
		}
		lim := new(big.Int).Lsh(big.NewInt(1), uint(a.bits))
		if a.kind == 'u' {
			if n.Sign() < 0 || n.Cmp(lim) >= 0 {
				return fmt.Errorf("%s is out of range for %s", v, a.name)
			}
			n.FillBytes(dst[:])
			return nil
		}
		half := new(big.Int).Rsh(lim, 1)
		if n.Cmp(half) >= 0 || n.Cmp(new(big.Int).Neg(half)) < 0 {
			return fmt.Errorf("%s is out of range for %s", v, a.name)
		}
		if n.Sign() < 0 { // two's complement over 256 bits
			n.Add(n, new(big.Int).Lsh(big.NewInt(1), 256))
		}
		n.FillBytes(dst[:])
	case 'f':
		b, err := hexBytes(v)
		if err != nil || len(b) != a.bits {
			return fmt.Errorf("%q is not %d bytes of hex", v, a.bits)
		}
		copy(dst[:], b) // left-aligned
	default:
		return fmt.Errorf("%s is not a static type", a.name)
	}
	return nil
}

// encode is abi.encode(types, values) appended to dst.
func encode(dst []byte, types []abiType, values []string) ([]byte, error) {
	if len(values) != len(types) {
		return dst, fmt.Errorf("%d values for %d leaf types", len(values), len(types))
	}
	head := 32 * len(types)
	var tail []byte
	var w [32]byte
	for i, t := range types {
		if !t.dynamic {
			if err := t.word(values[i], &w); err != nil {
				return dst, fmt.Errorf("column %d (%s): %w", i, t.name, err)
			}
			dst = append(dst, w[:]...)
			continue
		}
		data := []byte(values[i])
		if t.kind == 'd' {
			b, err := hexBytes(values[i])
			if err != nil {
				return dst, fmt.Errorf("column %d (bytes): %q is not hex", i, values[i])
			}
			data = b
		}
		big.NewInt(int64(head + len(tail))).FillBytes(w[:])
		dst = append(dst, w[:]...)
		big.NewInt(int64(len(data))).FillBytes(w[:])
		tail = append(tail, w[:]...)
		tail = append(tail, data...)
		if pad := len(data) % 32; pad != 0 {
			tail = append(tail, make([]byte, 32-pad)...)
		}
	}
	return append(dst, tail...), nil
}

func digits(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

func parseInt(v string) (*big.Int, bool) {
	if strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X") {
		return new(big.Int).SetString(v[2:], 16)
	}
	return new(big.Int).SetString(v, 10)
}

func hexBytes(v string) ([]byte, error) {
	if !strings.HasPrefix(v, "0x") {
		return nil, fmt.Errorf("no 0x prefix")
	}
	return hex.DecodeString(v[2:])
}
