package server

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/poh-holdmetrics/poh-holdmetrics/proto/pohpb"
)

// TestParseTime pins the time syntax of every front end and its error
// texts (ParseWindow is TestParseWindow's).
func TestParseTime(t *testing.T) {
	for _, tt := range []struct {
		in       string
		json     bool // ParseTime (a JSON value) rather than ParseTimeText
		want     int64
		errorMsg string
	}{
		{"100", true, 100, ""},
		{"1.9", true, 1, ""},
		{"-1", true, -1, ""}, // integers are the callers' to range-check
		{`"1970-01-01T00:01:40.5Z"`, true, 100, ""},
		{"1e300", true, 0, "event 2: start 1e300: is outside [0, 253402300799]"},
		{"x", true, 0, "event 2: start x: is not Unix seconds or an RFC 3339 time"},
		{`"soon"`, true, 0, `event 2: start "soon": is not Unix seconds or an RFC 3339 time`},
		{`"\x"`, true, 0, `event 2: start "\x": is not a string`},
		{"100", false, 100, ""},
		{"1970-01-01T00:01:40Z", false, 100, ""},
		{`"1970-01-01T00:01:40Z"`, false, 100, ""},
		{"soon", false, 0, "event 2: start soon: is not Unix seconds or an RFC 3339 time"},
		{" 5", false, 0, "event 2: start  5: is not Unix seconds or an RFC 3339 time"},
	} {
		var got int64
		var err error
		if tt.json {
			got, err = ParseTime(2, "start", json.RawMessage(tt.in))
		} else {
			got, err = ParseTimeText(2, "start", tt.in)
		}
		if tt.errorMsg == "" && (err != nil || got != tt.want) {
			t.Errorf("%q (json %v) = %d, %v; want %d", tt.in, tt.json, got, err, tt.want)
		}
		if tt.errorMsg != "" && (err == nil || err.Error() != tt.errorMsg) {
			t.Errorf("%q (json %v): error %v; want %s", tt.in, tt.json, err, tt.errorMsg)
		}
	}
}

func TestTimestampAndWindowFromProto(t *testing.T) {
	if err := CheckTimestamp(-1, "at", &timestamppb.Timestamp{Seconds: 5, Nanos: 999999999}); err != nil {
		t.Fatal(err)
	}
	err := CheckTimestamp(-1, "at", &timestamppb.Timestamp{Seconds: 5, Nanos: 1e9})
	if err == nil || err.Error() != "at 1000000000ns: nanos must be in [0, 1e9)" {
		t.Fatalf("nanos 1e9: %v", err)
	}
	for _, tt := range []struct {
		w    *pohpb.Window
		want string
	}{
		{&pohpb.Window{Start: ts(5)}, "window unset end: needs both start and end"},
		{&pohpb.Window{Start: ts(5), End: &timestamppb.Timestamp{Seconds: 9, Nanos: -1}}, "window -1ns: nanos must be in [0, 1e9)"},
		{&pohpb.Window{Start: ts(9), End: ts(5)}, "end 5 is before start 9"},
	} {
		if _, err := WindowFromProto(tt.w); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v; want %s", tt.w, err, tt.want)
		}
	}
	if w, err := WindowFromProto(&pohpb.Window{Start: ts(5), End: ts(60)}); err != nil || w.Start != 5 || w.End != 60 {
		t.Fatalf("[5, 60): %v %v", w, err)
	}
}
