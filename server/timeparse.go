package server

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/proto/pohpb"
)

// Times and windows as every front end takes them: the HTTP JSON API (event
// times, "at", the now and window query parameters), gRPC (Timestamps and
// Window messages) and holdmetricsd's window setting. Every error is a
// *core.ValidationError naming the field (and the event index, or -1).

// ParseTime reads a JSON value: Unix seconds (a number, floored) or an RFC
// 3339 string. Integers are exact; the range is the callers' to check
// (core.ValidateTime), except for non-integer numbers, which must lie in
// [core.MinTime, core.MaxTime].
func ParseTime(i int, field string, raw json.RawMessage) (int64, error) {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, &core.ValidationError{Index: i, Field: field, Value: string(raw), Reason: core.ReasonOutOfRange, Detail: "is not a string"}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, &core.ValidationError{Index: i, Field: field, Value: strconv.Quote(s), Reason: core.ReasonOutOfRange,
				Detail: "is not Unix seconds or an RFC 3339 time"}
		}
		return t.Unix(), nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, &core.ValidationError{Index: i, Field: field, Value: string(raw), Reason: core.ReasonOutOfRange,
			Detail: "is not Unix seconds or an RFC 3339 time"}
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n, nil // exact for every integer
	}
	f = math.Floor(f)
	if !(f >= float64(core.MinTime) && f <= float64(core.MaxTime)) {
		return 0, &core.ValidationError{Index: i, Field: field, Value: string(raw), Reason: core.ReasonOutOfRange,
			Detail: fmt.Sprintf("is outside [%d, %d]", core.MinTime, core.MaxTime)}
	}
	return int64(f), nil
}

// ParseTimeText reads a time written as text (a query parameter, one end of
// a window): Unix seconds or RFC 3339, with or without JSON quotes. On
// failure the error is ParseTime's for s as a JSON value.
func ParseTimeText(i int, field, s string) (int64, error) {
	v, err := ParseTime(i, field, json.RawMessage(s))
	if err != nil && !strings.HasPrefix(s, `"`) {
		if v2, err2 := ParseTime(i, field, json.RawMessage(strconv.Quote(s))); err2 == nil {
			return v2, nil
		}
	}
	return v, err
}

// ParseWindow reads a window "t0,t1" ([t0, t1), each Unix seconds or RFC
// 3339, spaces around either allowed) as the HTTP API and holdmetricsd's
// window setting take it. Errors are on field "window"; t0 > t1 names both
// values.
func ParseWindow(s string) (core.Window, error) {
	t0, t1, ok := strings.Cut(s, ",")
	if !ok {
		return core.Window{}, &core.ValidationError{Index: -1, Field: "window", Value: strconv.Quote(s),
			Reason: core.ReasonOutOfRange, Detail: "must be t0,t1 (Unix seconds or RFC 3339)"}
	}
	var w core.Window
	for i, part := range []string{t0, t1} {
		part = strings.TrimSpace(part)
		v, err := ParseTimeText(-1, "window", part)
		if err != nil {
			return core.Window{}, &core.ValidationError{Index: -1, Field: "window", Value: strconv.Quote(s),
				Reason: core.ReasonOutOfRange, Detail: fmt.Sprintf("%s %q is not Unix seconds or an RFC 3339 time",
					[]string{"start", "end"}[i], part)}
		}
		if i == 0 {
			w.Start = v
		} else {
			w.End = v
		}
	}
	if err := w.Validate(); err != nil {
		return core.Window{}, err
	}
	return w, nil
}

// CheckTimestamp checks a gRPC Timestamp's nanos ([0, 1e9)); its seconds are
// the callers' to check.
func CheckTimestamp(i int, field string, t *timestamppb.Timestamp) error {
	if err := checkNanos(i, field, t.Nanos); err != nil {
		return err
	}
	return nil
}

// checkNanos is CheckTimestamp for a decoded nanos field (see wire.go).
func checkNanos(i int, field string, nanos int32) *core.ValidationError {
	if nanos < 0 || nanos >= 1e9 {
		return &core.ValidationError{Index: i, Field: field, Value: strconv.Itoa(int(nanos)) + "ns",
			Reason: core.ReasonOutOfRange, Detail: "nanos must be in [0, 1e9)"}
	}
	return nil
}

// WindowFromProto converts a TopRequest window: both ends are required, each
// a valid Timestamp, and the window must be valid (core.Window.Validate).
func WindowFromProto(m *pohpb.Window) (core.Window, error) {
	if m.Start == nil || m.End == nil {
		return core.Window{}, &core.ValidationError{Index: -1, Field: "window", Value: "unset end",
			Reason: core.ReasonEmpty, Detail: "needs both start and end"}
	}
	if err := CheckTimestamp(-1, "window", m.Start); err != nil {
		return core.Window{}, err
	}
	if err := CheckTimestamp(-1, "window", m.End); err != nil {
		return core.Window{}, err
	}
	w := core.Window{Start: m.Start.Seconds, End: m.End.Seconds}
	if err := w.Validate(); err != nil {
		return core.Window{}, err
	}
	return w, nil
}
