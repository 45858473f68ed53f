package server

import (
	"errors"
	"fmt"

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
	w.weightExact = m.GetWeightExact()
	return w.event(i)
}

// exactText is an exact score in decimal, "" in float mode.
func exactText(x *core.Int) string {
	if x == nil {
		return ""
	}
	return x.String()
}

func statToMsg(st *core.HolderStat) *pohpb.HoldStat {
	return &pohpb.HoldStat{
		HolderId:      st.HolderID,
		TotalSeconds:  st.TotalSeconds,
		WeightedScore: st.Score,
		UpdatedAt:     &timestamppb.Timestamp{Seconds: st.UpdatedAt},
		Events:        st.Events,
		ScoreExact:    exactText(st.Exact),
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
	if len(c.WeightU256) > 0 {
		cols.Wei = c.WeightU256
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

// noHistory explains core.ErrNoHistory to a daemon user (and still wraps it).
func noHistory(err error) error {
	if errors.Is(err, core.ErrNoHistory) {
		return fmt.Errorf("%w: start holdmetricsd with --history to query a window", err)
	}
	return err
}
