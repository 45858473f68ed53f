package server

import (
	"strconv"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/proto/pohpb"
)

// eventFromMsg converts a HoldMsg: start is required, whole seconds are used
// (a Timestamp's nanos are always >= 0, so dropping them floors), an unset
// or epoch-0 end is an open hold, an unset weight is 1.0. Values are
// validated later by the aggregator; only what cannot be represented as a
// core.HoldEvent is rejected here.
func eventFromMsg(i int, m *pohpb.HoldMsg) (core.HoldEvent, *core.ValidationError) {
	e := core.HoldEvent{TokenID: m.GetTokenId(), HolderID: m.GetHolderId(), Weight: 1}
	if err := core.ValidateID(i, "token_id", e.TokenID); err != nil {
		return e, err
	}
	if err := core.ValidateID(i, "holder_id", e.HolderID); err != nil {
		return e, err
	}
	if m.Start == nil {
		return e, &core.ValidationError{Index: i, Field: "start", Value: "unset", Reason: core.ReasonEmpty,
			Detail: "is required"}
	}
	if err := checkTimestamp(i, "start", m.Start); err != nil {
		return e, err
	}
	e.Start = m.Start.Seconds
	if m.End != nil && (m.End.Seconds != 0 || m.End.Nanos != 0) {
		if err := checkTimestamp(i, "end", m.End); err != nil {
			return e, err
		}
		e.End, e.HasEnd = m.End.Seconds, true
	}
	if m.Weight != nil {
		e.Weight = *m.Weight
	}
	return e, nil
}

func checkTimestamp(i int, field string, t *timestamppb.Timestamp) *core.ValidationError {
	if t.Nanos < 0 || t.Nanos >= 1e9 {
		return &core.ValidationError{Index: i, Field: field, Value: strconv.Itoa(int(t.Nanos)) + "ns",
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
