package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Limits of a valid HoldEvent. They are part of the cross-language contract
// (the Python fallback mirrors them) and are checked by the shared vectors in
// testdata/vectors.json.
const (
	// MaxIDBytes is the largest token_id / holder_id, in UTF-8 bytes.
	MaxIDBytes = 256
	// MinTime and MaxTime bound every timestamp (Unix seconds):
	// 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
	MinTime int64 = 0
	MaxTime int64 = 253402300799
	// MaxWeight bounds a weight so that no score can overflow float64:
	// MaxWeight × MaxTime × 2^60 events is still finite. Real token amounts
	// (1e30 base units and more) are far below it.
	MaxWeight = 1e200
)

// HoldEvent is one hold: HolderID held Weight units of TokenID from Start
// until End (Unix seconds). HasEnd=false means the hold is still open.
//
// The aggregator never retains the id strings of the events it is given: it
// copies what it keeps, so callers may pass strings that alias buffers they
// reuse after the call returns (the C API does exactly that).
type HoldEvent struct {
	TokenID  string
	HolderID string
	Start    int64
	End      int64
	HasEnd   bool
	Weight   float64
	// Wei is an exact integer weight (exact mode only; see exact.go). Nil:
	// the weight is Weight (in exact mode, when that is an integer).
	Wei *Wei
}

// Reason is the machine-readable kind of a validation failure. Its values are
// shared with the C API and the Python package.
type Reason string

// The validation failures, one per rule in the contract.
const (
	ReasonEmpty          Reason = "empty"            // id is ""
	ReasonTooLong        Reason = "too_long"         // id longer than MaxIDBytes
	ReasonInvalidUTF8    Reason = "invalid_utf8"     // id is not UTF-8
	ReasonOutOfRange     Reason = "out_of_range"     // time outside [MinTime, MaxTime], weight > MaxWeight
	ReasonEndBeforeStart Reason = "end_before_start" // end < start
	ReasonNotFinite      Reason = "not_finite"       // NaN or ±Inf weight
	ReasonNegative       Reason = "negative"         // weight < 0
	ReasonExactWeight    Reason = "exact_weight"     // an exact weight outside exact mode
)

// ErrInvalidEvent is matched (errors.Is) by every *ValidationError.
var ErrInvalidEvent = errors.New("invalid hold event")

// ValidationError says which event (Index in its batch, -1 for a lone value
// such as "now"), which field, which value and why it was rejected.
type ValidationError struct {
	Index  int
	Field  string // token_id, holder_id, start, end, weight, now, at, window
	Value  string // the offending value, rendered for humans
	Reason Reason
	Detail string // human explanation, e.g. "is before start 10"
}

func (e *ValidationError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("%s %s: %s", e.Field, e.Value, e.Detail)
	}
	return fmt.Sprintf("event %d: %s %s: %s", e.Index, e.Field, e.Value, e.Detail)
}

// Unwrap makes errors.Is(err, ErrInvalidEvent) true.
func (e *ValidationError) Unwrap() error { return ErrInvalidEvent }

// BatchError lists every rejected event of a batch recorded in partial mode.
type BatchError struct {
	Errors []*ValidationError
}

func (e *BatchError) Error() string {
	if len(e.Errors) == 1 {
		return e.Errors[0].Error()
	}
	return fmt.Sprintf("%d events rejected; first: %v", len(e.Errors), e.Errors[0])
}

// Unwrap exposes the individual errors to errors.Is / errors.As.
func (e *BatchError) Unwrap() []error {
	out := make([]error, len(e.Errors))
	for i, v := range e.Errors {
		out[i] = v
	}
	return out
}

// QuoteID renders an id for an error message: quoted, and cut to 64 bytes so
// that a 1 MiB id does not become a 1 MiB log line.
func QuoteID(s string) string { return quoteID(s) }

func quoteID(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

// ValidateID checks a token_id or holder_id.
func ValidateID(index int, field, id string) *ValidationError {
	switch {
	case len(id) == 0:
		return &ValidationError{index, field, `""`, ReasonEmpty, "must not be empty"}
	case len(id) > MaxIDBytes:
		return &ValidationError{index, field, quoteID(id), ReasonTooLong,
			fmt.Sprintf("is %d bytes, more than %d", len(id), MaxIDBytes)}
	case !validUTF8(id):
		return &ValidationError{index, field, quoteID(id), ReasonInvalidUTF8, "is not valid UTF-8"}
	}
	return nil
}

// ValidateTime checks one timestamp (Unix seconds).
func ValidateTime(index int, field string, t int64) *ValidationError {
	if t < MinTime || t > MaxTime {
		return &ValidationError{index, field, strconv.FormatInt(t, 10), ReasonOutOfRange,
			fmt.Sprintf("is outside [%d, %d]", MinTime, MaxTime)}
	}
	return nil
}

// ValidateWeight checks a weight.
func ValidateWeight(index int, w float64) *ValidationError {
	switch {
	case math.IsNaN(w) || math.IsInf(w, 0):
		return &ValidationError{index, "weight", formatFloat(w), ReasonNotFinite, "must be finite"}
	case w < 0:
		return &ValidationError{index, "weight", formatFloat(w), ReasonNegative, "must be >= 0"}
	case w > MaxWeight:
		return &ValidationError{index, "weight", formatFloat(w), ReasonOutOfRange,
			"is larger than 1e200"}
	}
	return nil
}

// validateSpan checks start, end and their order: the numeric part of an event.
func validateSpan(index int, start, end int64, hasEnd bool) *ValidationError {
	if err := ValidateTime(index, "start", start); err != nil {
		return err
	}
	if hasEnd {
		if err := ValidateTime(index, "end", end); err != nil {
			return err
		}
		if end < start {
			return &ValidationError{index, "end", strconv.FormatInt(end, 10), ReasonEndBeforeStart,
				fmt.Sprintf("is before start %d", start)}
		}
	}
	return nil
}

// Validate checks every rule of the contract, in field order (token_id,
// holder_id, start, end, weight), and reports the first failure. index is the
// event's position in its batch (-1 for none).
func (e HoldEvent) Validate(index int) *ValidationError {
	if err := ValidateID(index, "token_id", e.TokenID); err != nil {
		return err
	}
	if err := ValidateID(index, "holder_id", e.HolderID); err != nil {
		return err
	}
	if err := validateSpan(index, e.Start, e.End, e.HasEnd); err != nil {
		return err
	}
	if e.Wei != nil {
		return errExactWeight(index)
	}
	return ValidateWeight(index, e.Weight)
}

// ValidateExact is Validate for exact mode: the weight is e.Wei, or an
// integer float weight (ReasonNotInteger otherwise).
func (e HoldEvent) ValidateExact(index int) *ValidationError {
	if err := ValidateID(index, "token_id", e.TokenID); err != nil {
		return err
	}
	if err := ValidateID(index, "holder_id", e.HolderID); err != nil {
		return err
	}
	if err := validateSpan(index, e.Start, e.End, e.HasEnd); err != nil {
		return err
	}
	_, err := e.weightExact(index)
	return err
}

func errExactWeight(index int) *ValidationError {
	return &ValidationError{index, "weight", "(exact)", ReasonExactWeight,
		"is an exact integer weight, but this is float mode (use exact mode for integer weights)"}
}

// valid is Validate's verdict without building an error: one well-predicted
// branch per event on the record path. It must agree with Validate (a fuzz
// target checks that).
func (e *HoldEvent) valid() bool {
	return uint(len(e.TokenID)-1) < MaxIDBytes && uint(len(e.HolderID)-1) < MaxIDBytes && // 1..MaxIDBytes
		uint64(e.Start) <= uint64(MaxTime) &&
		(!e.HasEnd || (e.End >= e.Start && e.End <= MaxTime)) &&
		e.Weight >= 0 && e.Weight <= MaxWeight && e.Wei == nil && // false for NaN
		((asciiBits(e.TokenID)|asciiBits(e.HolderID))&nonASCII == 0 ||
			utf8.ValidString(e.TokenID) && utf8.ValidString(e.HolderID))
}

// ValidateBatch returns the first invalid event's error, or nil.
func ValidateBatch(events []HoldEvent) error {
	for i := range events {
		if err := events[i].Validate(i); err != nil {
			return err
		}
	}
	return nil
}

// formatFloat renders a float the way Python's repr does for the values that
// matter here (nan, inf, -inf, shortest round-trip digits), so error messages
// agree across backends.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// validUTF8 is utf8.ValidString with a cheaper path for the common case of
// ASCII ids (wallet addresses, contract addresses).
func validUTF8(s string) bool {
	return asciiBits(s)&nonASCII == 0 || utf8.ValidString(s)
}

const nonASCII = 0x8080808080808080

// asciiBits ORs the bytes of s together, 8 at a time (the last word overlaps
// the one before it): the result has a bit of nonASCII set iff some byte of s
// is not ASCII.
func asciiBits(s string) uint64 {
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // read-only view, no copy
	n := len(b)
	if n < 8 {
		if n >= 4 {
			return uint64(binary.LittleEndian.Uint32(b) | binary.LittleEndian.Uint32(b[n-4:]))
		}
		if n > 0 {
			return uint64(b[0] | b[n/2] | b[n-1]) // covers every byte of 1..3
		}
		return 0
	}
	acc := binary.LittleEndian.Uint64(b[n-8:])
	i := 0
	for ; i+32 <= n; i += 32 {
		c := b[i : i+32 : i+32] // one bounds check for four loads
		acc |= binary.LittleEndian.Uint64(c) | binary.LittleEndian.Uint64(c[8:]) |
			binary.LittleEndian.Uint64(c[16:]) | binary.LittleEndian.Uint64(c[24:])
	}
	for ; i+8 <= n; i += 8 {
		acc |= binary.LittleEndian.Uint64(b[i:])
	}
	return acc
}
