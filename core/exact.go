package core

import (
	"math"
	"math/big"
	"math/bits"

	"github.com/holiman/uint256"
)

// Exact mode: weights are integers 0 ≤ w < 2^256 (token amounts in their
// smallest unit, e.g. wei), and a score is the exact integer Σ seconds × w.
// A term is below 2^256 · 2^38 = 2^294 (seconds ≤ MaxTime < 2^38), so an Int
// of 384 bits holds the sum of 2^90 terms: no sum of valid inputs can
// overflow it, and nothing is ever rounded or wrapped. Sums are exact, so
// their order does not matter (unlike float mode's Neumaier sums).

// Int is an exact score: an unsigned 384-bit integer, limbs little-endian.
type Int [6]uint64

// MaxExactFloatWeight is the largest float weight exact mode takes as an
// integer weight (every integer up to it is exactly a float64).
const MaxExactFloatWeight = 1 << 53

// ReasonNotInteger: exact mode was given a weight that is not an integer.
const ReasonNotInteger Reason = "not_integer"

// addMul adds w × s to x.
func (x *Int) addMul(w *uint256.Int, s uint64) {
	var carry, c uint64
	var p [5]uint64
	for i := 0; i < 4; i++ {
		hi, lo := bits.Mul64(w[i], s)
		p[i], c = bits.Add64(lo, carry, 0)
		carry = hi + c // hi ≤ 2^64−2, so no overflow
	}
	p[4] = carry
	c = 0
	for i := 0; i < 5; i++ {
		x[i], c = bits.Add64(x[i], p[i], c)
	}
	x[5] += c
}

// AddMul adds w × s to x (a score: a weight held for s seconds).
func (x *Int) AddMul(w *uint256.Int, s uint64) { x.addMul(w, s) }

// add adds y to x.
func (x *Int) add(y *Int) {
	var c uint64
	for i := range x {
		x[i], c = bits.Add64(x[i], y[i], c)
	}
}

// Cmp compares x and y: -1, 0 or +1.
func (x *Int) Cmp(y *Int) int {
	for i := len(x) - 1; i >= 0; i-- {
		switch {
		case x[i] < y[i]:
			return -1
		case x[i] > y[i]:
			return 1
		}
	}
	return 0
}

// IsZero reports whether x is 0.
func (x *Int) IsZero() bool { return *x == Int{} }

// DivFloor is ⌊x / d⌋ (d > 0).
func (x Int) DivFloor(d uint64) Int {
	var q Int
	var r uint64
	for i := len(x) - 1; i >= 0; i-- {
		q[i], r = bits.Div64(r, x[i], d)
	}
	return q
}

// Float is x rounded to the nearest float64 (ties to even).
func (x *Int) Float() float64 {
	n := len(x) - 1
	for n >= 0 && x[n] == 0 {
		n--
	}
	switch {
	case n < 0:
		return 0
	case n == 0:
		return float64(x[0]) // Go rounds uint64 → float64 to nearest even
	}
	lz := uint(bits.LeadingZeros64(x[n]))
	top := x[n] << lz
	sticky := uint64(0)
	if lz > 0 {
		top |= x[n-1] >> (64 - lz)
		if x[n-1]<<lz != 0 {
			sticky = 1
		}
	} else if x[n-1] != 0 {
		sticky = 1
	}
	for i := n - 2; i >= 0 && sticky == 0; i-- {
		if x[i] != 0 {
			sticky = 1
		}
	}
	// top holds the 64 leading bits; bit 0 is below the bits float64(top)
	// drops, so OR-ing the lower bits' "any set" into it rounds correctly.
	return math.Ldexp(float64(top|sticky), 64*n-int(lz))
}

// Big is x as a *big.Int.
func (x *Int) Big() *big.Int {
	words := make([]big.Word, 0, len(x)*64/bits.UintSize)
	for _, l := range x {
		if bits.UintSize == 64 {
			words = append(words, big.Word(l))
		} else {
			words = append(words, big.Word(uint32(l)), big.Word(l>>32))
		}
	}
	return new(big.Int).SetBits(words)
}

// String is x in decimal.
func (x *Int) String() string { return x.Big().String() }

// SetBig sets x from a non-negative b below 2^384; false if it does not fit.
func (x *Int) SetBig(b *big.Int) bool {
	if b.Sign() < 0 || b.BitLen() > 384 {
		return false
	}
	*x = Int{}
	var buf [48]byte
	b.FillBytes(buf[:])
	for i := range x {
		for j := 0; j < 8; j++ {
			x[i] |= uint64(buf[47-8*i-j]) << (8 * j)
		}
	}
	return true
}

// Bytes is x big-endian in 48 bytes.
func (x *Int) Bytes() [48]byte {
	var b [48]byte
	for i, l := range x {
		for j := 0; j < 8; j++ {
			b[47-8*i-j] = byte(l >> (8 * j))
		}
	}
	return b
}

// SetBytes sets x from 48 big-endian bytes.
func (x *Int) SetBytes(b *[48]byte) {
	*x = Int{}
	for i := range x {
		for j := 0; j < 8; j++ {
			x[i] |= uint64(b[47-8*i-j]) << (8 * j)
		}
	}
}

// Wei is an exact weight as it crosses boundaries: 32 bytes big-endian, the
// layout cryo writes u256 columns in.
type Wei = [32]byte

// WeiOf is the big-endian form of w.
func WeiOf(w *uint256.Int) *Wei {
	b := w.Bytes32()
	return &b
}

// weightExact is the exact weight of e: its Wei, or, without one, its float
// weight when that is an integer in [0, 2^53] (so that integer weights sent
// as numbers work in exact mode). index names the event in errors.
func (e *HoldEvent) weightExact(index int) (uint256.Int, *ValidationError) {
	var w uint256.Int
	if e.Wei != nil {
		w.SetBytes32(e.Wei[:])
		return w, nil
	}
	f := e.Weight
	if !(f >= 0 && f <= MaxExactFloatWeight && f == math.Trunc(f)) {
		if err := ValidateWeight(index, f); err != nil {
			return w, err
		}
		return w, &ValidationError{index, "weight", formatFloat(f), ReasonNotInteger,
			"exact mode needs an integer weight (up to 2^53 as a number, any up to 2^256-1 as an exact weight)"}
	}
	w.SetUint64(uint64(f))
	return w, nil
}

// ParseWei reads an exact weight written in decimal (as JSON, CSV and the
// command line carry uint256 values): digits only, below 2^256. index and
// the errors are as for every other field of an event.
func ParseWei(index int, s string) (*Wei, *ValidationError) {
	var w uint256.Int
	switch {
	case s == "":
		return nil, &ValidationError{index, "weight", `""`, ReasonEmpty, "must be a decimal integer"}
	case s[0] == '-' && len(s) > 1 && isDigits(s[1:]):
		return nil, &ValidationError{index, "weight", quoteID(s), ReasonNegative, "must be >= 0"}
	case !isDigits(s):
		return nil, &ValidationError{index, "weight", quoteID(s), ReasonNotInteger,
			"must be a decimal integer (exact mode)"}
	}
	if err := w.SetFromDecimal(s); err != nil {
		return nil, &ValidationError{index, "weight", quoteID(s), ReasonOutOfRange, "is not below 2^256"}
	}
	return WeiOf(&w), nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
