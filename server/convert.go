package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/proto/pohpb"
)

// eventFromMsg converts a generated HoldMsg (see wireEvent.event).
func eventFromMsg(i int, m *pohpb.HoldMsg) (core.HoldEvent, *core.ValidationError) {
	w := wireEvent{token: m.GetTokenId(), holder: m.GetHolderId()}
	for _, p := range []struct {
		dst *wireTime
		src *timestamppb.Timestamp
	}{{&w.start, m.Start}, {&w.end, m.End}} {
		if p.src != nil {
			*p.dst = wireTime{p.src.Seconds, p.src.Nanos, true}
		}
	}
	if m.Weight != nil {
		w.weight, w.hasWeight = *m.Weight, true
	}
	return w.event(i)
}

func checkTimestamp(i int, field string, t *timestamppb.Timestamp) *core.ValidationError {
	return checkNanos(i, field, t.Nanos)
}

func checkNanos(i int, field string, nanos int32) *core.ValidationError {
	if nanos < 0 || nanos >= 1e9 {
		return &core.ValidationError{Index: i, Field: field, Value: strconv.Itoa(int(nanos)) + "ns",
			Reason: core.ReasonOutOfRange, Detail: "nanos must be in [0, 1e9)"}
	}
	return nil
}

func statToMsg(st *core.HolderStat) *pohpb.HoldStat {
	return &pohpb.HoldStat{
		HolderId:      st.HolderID,
		TotalSeconds:  st.TotalSeconds,
		WeightedScore: st.Score,
		UpdatedAt:     &timestamppb.Timestamp{Seconds: st.UpdatedAt},
		Events:        st.Events,
		OpenHolds:     st.OpenHolds,
		Tokens:        int64(st.Tokens),
	}
}

// columnsEvents converts the columnar part of a batch; ids alias the
// message's buffers (the aggregator copies what it keeps).
func columnsEvents(c *pohpb.HoldColumns, dst []core.HoldEvent) ([]core.HoldEvent, error) {
	cols := core.Columns{
		Start:  c.Start,
		End:    c.End,
		Weight: c.Weight,
		Token:  core.IDColumn{Data: c.TokenIds, Offsets: c.TokenOffsets},
		Holder: core.IDColumn{Data: c.HolderIds, Offsets: c.HolderOffsets},
	}
	if len(c.End) == 0 {
		cols.End = nil
	}
	if len(c.Weight) == 0 {
		cols.Weight = nil
	}
	if len(c.HasEnd) > 0 {
		cols.HasEnd = make([]uint8, len(c.HasEnd))
		for i, v := range c.HasEnd {
			if v {
				cols.HasEnd[i] = 1
			}
		}
	}
	return cols.Events(dst)
}

// ParseWindow reads a window "t0,t1" ([t0, t1), each Unix seconds or RFC
// 3339) as the HTTP API and the --window flag take it. Errors are
// *core.ValidationError on field "window"; t0 > t1 names both values.
func ParseWindow(s string) (core.Window, error) {
	t0, t1, ok := strings.Cut(s, ",")
	if !ok {
		return core.Window{}, &core.ValidationError{Index: -1, Field: "window", Value: strconv.Quote(s),
			Reason: core.ReasonOutOfRange, Detail: "must be t0,t1 (Unix seconds or RFC 3339)"}
	}
	var w core.Window
	for i, part := range []string{t0, t1} {
		part = strings.TrimSpace(part)
		v, err := parseTime(-1, "window", json.RawMessage(part))
		if err != nil && part != "" && part[0] != '"' {
			v, err = parseTime(-1, "window", json.RawMessage(strconv.Quote(part)))
		}
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

// windowMsg converts a TopRequest window: both ends are required.
func windowMsg(m *pohpb.Window) (core.Window, error) {
	if m.Start == nil || m.End == nil {
		return core.Window{}, &core.ValidationError{Index: -1, Field: "window", Value: "unset end",
			Reason: core.ReasonEmpty, Detail: "needs both start and end"}
	}
	if err := checkTimestamp(-1, "window", m.Start); err != nil {
		return core.Window{}, err
	}
	if err := checkTimestamp(-1, "window", m.End); err != nil {
		return core.Window{}, err
	}
	w := core.Window{Start: m.Start.Seconds, End: m.End.Seconds}
	if err := w.Validate(); err != nil {
		return core.Window{}, err
	}
	return w, nil
}

// noHistory explains core.ErrNoHistory to a daemon user (and still wraps it).
func noHistory(err error) error {
	if errors.Is(err, core.ErrNoHistory) {
		return fmt.Errorf("%w: start holdmetricsd with --history to query a window", err)
	}
	return err
}
