package core

import (
	"encoding/binary"
	"math"
	"testing"
	"unicode/utf8"
)

// Seed corpora: testdata/fuzz/<target>/seed-*. `make fuzz` explores further.

func FuzzValidate(f *testing.F) {
	f.Fuzz(func(t *testing.T, token, holder string, start, end int64, hasEnd bool, w float64) {
		e := HoldEvent{TokenID: token, HolderID: holder, Start: start, End: end, HasEnd: hasEnd, Weight: w}
		err := e.Validate(0)
		valid := token != "" && holder != "" && len(token) <= MaxIDBytes && len(holder) <= MaxIDBytes &&
			utf8.ValidString(token) && utf8.ValidString(holder) &&
			start >= MinTime && start <= MaxTime && (!hasEnd || (end >= start && end <= MaxTime)) &&
			!math.IsNaN(w) && w >= 0 && w <= MaxWeight
		if valid != (err == nil) {
			t.Fatalf("Validate(%+v) = %v, independent check says valid=%v", e, err, valid)
		}
		if e.valid() != (err == nil) {
			t.Fatalf("valid() = %v but Validate(%+v) = %v", e.valid(), e, err)
		}
		if err != nil && (err.Error() == "" || err.Index != 0 || err.Reason == "") {
			t.Fatalf("unhelpful error %#v", err)
		}
		for _, now := range []int64{MinTime, start, MaxTime} {
			s, serr := scoreAt([]HoldEvent{e}, now)
			if (serr == nil) != (err == nil) && now >= MinTime && now <= MaxTime {
				t.Fatalf("Score and Validate disagree: %v vs %v", serr, err)
			}
			if serr == nil && (s < 0 || math.IsInf(s, 0) || math.IsNaN(s)) {
				t.Fatalf("score %v", s)
			}
		}
	})
}

// decodeEvents turns fuzz bytes into events: 25 bytes each (start, end,
// weight bits, flags). Values are arbitrary, so many events are invalid.
func decodeEvents(data []byte) []HoldEvent {
	var out []HoldEvent
	for len(data) >= 25 {
		e := HoldEvent{TokenID: "T", HolderID: "h",
			Start:  int64(binary.LittleEndian.Uint64(data[0:])),
			End:    int64(binary.LittleEndian.Uint64(data[8:])),
			Weight: math.Float64frombits(binary.LittleEndian.Uint64(data[16:])),
			HasEnd: data[24]&1 != 0}
		if data[24]&2 != 0 { // keep most values in range so scores get exercised
			e.Start = int64(uint64(e.Start) % uint64(MaxTime+1))
			e.End = e.Start + int64(uint64(e.End)%uint64(MaxTime-e.Start+1))
			e.Weight = math.Abs(math.Mod(e.Weight, 1e6))
			if math.IsNaN(e.Weight) {
				e.Weight = 1
			}
		}
		out = append(out, e)
		data = data[25:]
	}
	return out
}

func FuzzScore(f *testing.F) {
	f.Fuzz(func(t *testing.T, now int64, data []byte) {
		events := decodeEvents(data)
		got, err := scoreAt(events, now)
		gotC, errC := scoreColumnsAt(toColumns(events), now)
		if (err == nil) != (errC == nil) {
			t.Fatalf("Score err %v, ScoreColumns err %v", err, errC)
		}
		if err != nil {
			if err.Error() != errC.Error() {
				t.Fatalf("errors differ: %v vs %v", err, errC)
			}
			return
		}
		if math.Float64bits(got) != math.Float64bits(gotC) {
			t.Fatalf("Score %v != ScoreColumns %v", got, gotC)
		}
		if want := exactScore(events, now); ulpDiff(got, want) > 1 && !(got == 0 && want == 0) {
			t.Fatalf("score %v, exact %v", got, want)
		}
	})
}

// FuzzColumns throws inconsistent column shapes and offsets at the columnar
// entry points: they must return errors, never panic.
func FuzzColumns(f *testing.F) {
	f.Fuzz(func(t *testing.T, n uint8, ids []byte, offs []byte, nEnd, nMask, nW uint8) {
		c := &Columns{Start: make([]int64, n%16)}
		if nEnd%3 != 0 {
			c.End = make([]int64, nEnd%16)
		}
		if nMask%3 != 0 {
			c.HasEnd = make([]uint8, nMask%16)
		}
		if nW%3 != 0 {
			c.Weight = make([]float64, nW%16)
		}
		if len(offs) > 0 {
			o := make([]int64, 0, len(offs))
			for _, b := range offs {
				o = append(o, int64(int8(b)))
			}
			c.Token = IDColumn{Data: ids, Offsets: o}
			c.Holder = IDColumn{Data: ids, Offsets: o}
		}
		_, _ = scoreColumnsAt(c, 100)
		if events, err := c.Events(nil); err == nil {
			a, _ := New(Options{})
			_, _ = a.Record(1, events, RecordOptions{Partial: true})
			_ = a.Close()
		}
	})
}
