package core

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The shared vectors live at the repository root so that every
// implementation (Go, C API, Python native and fallback) runs the same file.
type vectorFile struct {
	Vectors []vector `json:"vectors"`
}

type vector struct {
	Name   string        `json:"name"`
	Now    int64         `json:"now"`
	Events []vectorEvent `json:"events"`
	Score  *float64      `json:"score"`
	Error  *struct {
		Index  int    `json:"index"`
		Field  string `json:"field"`
		Reason Reason `json:"reason"`
	} `json:"error"`
}

type vectorEvent struct {
	TokenID     string          `json:"token_id"`
	HolderID    string          `json:"holder_id"`
	TokenIDHex  string          `json:"token_id_hex"`
	HolderIDHex string          `json:"holder_id_hex"`
	Start       int64           `json:"start"`
	End         *int64          `json:"end"`
	Weight      json.RawMessage `json:"weight"`
}

func (v vectorEvent) event(t *testing.T) HoldEvent {
	t.Helper()
	e := HoldEvent{TokenID: v.TokenID, HolderID: v.HolderID, Start: v.Start, Weight: 1}
	if v.TokenIDHex != "" {
		e.TokenID = mustHex(t, v.TokenIDHex)
	}
	if v.HolderIDHex != "" {
		e.HolderID = mustHex(t, v.HolderIDHex)
	}
	if v.End != nil {
		e.End, e.HasEnd = *v.End, true
	}
	if len(v.Weight) > 0 {
		switch string(v.Weight) {
		case `"nan"`:
			e.Weight = math.NaN()
		case `"inf"`:
			e.Weight = math.Inf(1)
		case `"-inf"`:
			e.Weight = math.Inf(-1)
		default:
			if err := json.Unmarshal(v.Weight, &e.Weight); err != nil {
				t.Fatalf("weight %s: %v", v.Weight, err)
			}
		}
	}
	return e
}

func mustHex(t *testing.T, s string) string {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) < 20 {
		t.Fatalf("only %d vectors loaded", len(f.Vectors))
	}
	return f.Vectors
}

// toColumns packs events the way the C API receives them.
func toColumns(events []HoldEvent) *Columns {
	c := &Columns{
		Start: make([]int64, len(events)), End: make([]int64, len(events)),
		HasEnd: make([]uint8, len(events)), Weight: make([]float64, len(events)),
		Token: IDColumn{Offsets: []int64{0}}, Holder: IDColumn{Offsets: []int64{0}},
	}
	for i, e := range events {
		c.Start[i], c.End[i], c.Weight[i] = e.Start, e.End, e.Weight
		if e.HasEnd {
			c.HasEnd[i] = 1
		}
		c.Token.Data = append(c.Token.Data, e.TokenID...)
		c.Token.Offsets = append(c.Token.Offsets, int64(len(c.Token.Data)))
		c.Holder.Data = append(c.Holder.Data, e.HolderID...)
		c.Holder.Offsets = append(c.Holder.Offsets, int64(len(c.Holder.Data)))
	}
	return c
}

func checkVectorResult(t *testing.T, v vector, got float64, err error) {
	t.Helper()
	if v.Error != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("want %+v, got score %v err %v", *v.Error, got, err)
		}
		if ve.Index != v.Error.Index || ve.Field != v.Error.Field || ve.Reason != v.Error.Reason {
			t.Fatalf("want %+v, got index=%d field=%s reason=%s (%v)", *v.Error, ve.Index, ve.Field, ve.Reason, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	if math.Float64bits(got) != math.Float64bits(*v.Score) && !(got == 0 && *v.Score == 0) {
		t.Fatalf("score = %v (%x), want %v (%x)", got, math.Float64bits(got), *v.Score, math.Float64bits(*v.Score))
	}
}

func TestVectorsScore(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			events := make([]HoldEvent, len(v.Events))
			for i, ve := range v.Events {
				events[i] = ve.event(t)
			}
			got, err := scoreAt(events, v.Now)
			checkVectorResult(t, v, got, err)
		})
	}
}

func TestVectorsScoreColumns(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			events := make([]HoldEvent, len(v.Events))
			for i, ve := range v.Events {
				events[i] = ve.event(t)
			}
			got, err := scoreColumnsAt(toColumns(events), v.Now)
			checkVectorResult(t, v, got, err)
		})
	}
}

// A holder's row agrees with the batch score of its events at every now at or
// after the time they were recorded: a closed hold whose end is still ahead
// grows like an open one until then. Each vector is recorded at time 0 (every
// end ahead: all live) and at its now (ends up to now credited at once), and
// the rows must add up to the batch score either way.
func TestVectorsAggregator(t *testing.T) {
	for _, v := range loadVectors(t) {
		for _, recordAt := range []int64{0, max(v.Now, 0)} {
			t.Run(fmt.Sprintf("%s/recorded at %d", v.Name, recordAt), func(t *testing.T) {
				a, err := New(Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				events := make([]HoldEvent, len(v.Events))
				for i, ve := range v.Events {
					events[i] = ve.event(t)
				}
				_, err = a.Record(recordAt, events, RecordOptions{})
				if v.Error != nil && v.Error.Field != "now" {
					checkVectorResult(t, v, 0, err)
					if a.Len() != 0 {
						t.Fatalf("rejected batch left %d holders", a.Len())
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if v.Error != nil { // now itself invalid
					_, err := snapshot(a, v.Now)
					checkVectorResult(t, v, 0, err)
					return
				}
				rows, err := snapshot(a, v.Now)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := scoreAt(events, v.Now)
				var acc neumaier
				for _, r := range rows {
					acc.add(r.Score)
				}
				if got := acc.value(); math.Abs(got-want) > 4*ulp(want) {
					t.Fatalf("aggregated %v, batch %v", got, want)
				}
			})
		}
	}
}

func ulp(x float64) float64 {
	if x == 0 {
		return math.SmallestNonzeroFloat64
	}
	return math.Nextafter(math.Abs(x), math.Inf(1)) - math.Abs(x)
}
