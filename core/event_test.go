package core

import (
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func ev(token, holder string, start, end int64, hasEnd bool, w float64) HoldEvent {
	return HoldEvent{TokenID: token, HolderID: holder, Start: start, End: end, HasEnd: hasEnd, Weight: w}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", MaxIDBytes)
	tests := []struct {
		name   string
		e      HoldEvent
		field  string
		reason Reason
		msg    string // expected Error() text, when set
	}{
		{"valid closed", ev("T", "a", 0, 10, true, 1), "", "", ""},
		{"valid open", ev("T", "a", 5, 0, false, 0), "", "", ""},
		{"valid limits", ev(long, long, MaxTime, MaxTime, true, MaxWeight), "", "", ""},
		{"empty token", ev("", "a", 0, 1, true, 1), "token_id", ReasonEmpty, `event 7: token_id "": must not be empty`},
		{"empty holder", ev("T", "", 0, 1, true, 1), "holder_id", ReasonEmpty, ""},
		{"token too long", ev(long+"x", "a", 0, 1, true, 1), "token_id", ReasonTooLong, ""},
		{"holder too long", ev("T", long+"é", 0, 1, true, 1), "holder_id", ReasonTooLong, ""},
		{"token bad utf8", ev("a\xffb", "a", 0, 1, true, 1), "token_id", ReasonInvalidUTF8, `event 7: token_id "a\xffb": is not valid UTF-8`},
		{"holder surrogate", ev("T", "\xed\xa0\x80", 0, 1, true, 1), "holder_id", ReasonInvalidUTF8, ""},
		{"start negative", ev("T", "a", -1, 1, true, 1), "start", ReasonOutOfRange, "event 7: start -1: is outside [0, 253402300799]"},
		{"start too late", ev("T", "a", MaxTime+1, 0, false, 1), "start", ReasonOutOfRange, ""},
		{"end too late", ev("T", "a", 0, MaxTime+1, true, 1), "end", ReasonOutOfRange, ""},
		{"end negative", ev("T", "a", 0, -1, true, 1), "end", ReasonOutOfRange, ""},
		{"end before start", ev("T", "a", 10, 5, true, 1), "end", ReasonEndBeforeStart, "event 7: end 5: is before start 10"},
		{"end ignored when open", ev("T", "a", 10, -5, false, 1), "", "", ""},
		{"nan weight", ev("T", "a", 0, 1, true, math.NaN()), "weight", ReasonNotFinite, "event 7: weight nan: must be finite"},
		{"inf weight", ev("T", "a", 0, 1, true, math.Inf(1)), "weight", ReasonNotFinite, ""},
		{"-inf weight", ev("T", "a", 0, 1, true, math.Inf(-1)), "weight", ReasonNotFinite, ""},
		{"negative weight", ev("T", "a", 0, 1, true, -2), "weight", ReasonNegative, "event 7: weight -2: must be >= 0"},
		{"tiny negative weight", ev("T", "a", 0, 1, true, -math.SmallestNonzeroFloat64), "weight", ReasonNegative, ""},
		{"huge weight", ev("T", "a", 0, 1, true, 1e201), "weight", ReasonOutOfRange, "event 7: weight 1e+201: is larger than 1e200"},
		{"first field wins", ev("", "", -1, -2, true, math.NaN()), "token_id", ReasonEmpty, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.e.Validate(7)
			if tc.e.valid() != (tc.field == "") {
				t.Fatalf("valid() = %v disagrees with the table", tc.e.valid())
			}
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted an invalid event")
			}
			if err.Index != 7 || err.Field != tc.field || err.Reason != tc.reason {
				t.Fatalf("got index=%d field=%s reason=%s", err.Index, err.Field, err.Reason)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Fatalf("message %q, want %q", err.Error(), tc.msg)
			}
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatal("not errors.Is ErrInvalidEvent")
			}
		})
	}
}

func TestValidationMessageTruncatesHugeIDs(t *testing.T) {
	e := ev(strings.Repeat("y", 10000), "a", 0, 1, true, 1)
	msg := e.Validate(0).Error()
	if len(msg) > 200 || !strings.Contains(msg, "10000 bytes") {
		t.Fatalf("message not bounded or missing size: %q", msg)
	}
}

func TestBatchErrorUnwrap(t *testing.T) {
	be := &BatchError{Errors: []*ValidationError{
		ev("", "a", 0, 1, true, 1).Validate(0), ev("T", "a", 0, 1, true, -1).Validate(3)}}
	if !errors.Is(be, ErrInvalidEvent) {
		t.Fatal("BatchError does not unwrap to ErrInvalidEvent")
	}
	if !strings.HasPrefix(be.Error(), "2 events rejected; first: event 0: token_id") {
		t.Fatalf("message %q", be.Error())
	}
}

func TestValidUTF8MatchesStdlib(t *testing.T) {
	for _, s := range []string{"", "a", "abcdefgh", "abcdefghi", "0x00000000000000000000000000000000000000ff",
		"abcdefg\xff", "\xffabcdefgh", "abcdefghé", "🐳🐳🐳", "abcdefgh\xed\xa0\x80", strings.Repeat("x", 300) + "\x80"} {
		if validUTF8(s) != utf8.ValidString(s) {
			t.Errorf("validUTF8(%q) = %v", s, validUTF8(s))
		}
	}
	// Every length and every position of a non-ASCII byte: the fast path
	// reads in overlapping words and must not miss any byte.
	for n := 1; n <= 40; n++ {
		for i := range n {
			for _, c := range []byte{0x80, 0xff, 0xc3} {
				b := []byte(strings.Repeat("a", n))
				b[i] = c
				if s := string(b); validUTF8(s) != utf8.ValidString(s) {
					t.Errorf("validUTF8(%q) = %v", s, validUTF8(s))
				}
			}
		}
	}
}
