package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/poh-holdmetrics/poh-holdmetrics/capi/capitest"
)

// The exact, transfer and allocation paths through the C API, on the same
// shared vectors as core and Python.

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}

type exactVec struct {
	Name   string           `json:"name"`
	Now    int64            `json:"now"`
	Window []int64          `json:"window"`
	Events []map[string]any `json:"events"`
	Score  string           `json:"score"`
	TWAB   string           `json:"twab"`
	Error  *struct {
		Index  int64  `json:"index"`
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"error"`
}

// cols is the vector as C columns with an exact weight column, or false when
// a weight cannot be one (a float, a negative or a too-large integer: those
// are rejected before the C API, by the caller's parser).
func (v exactVec) cols() (capitest.Cols, bool) {
	var c capitest.Cols
	c.Tokens, c.Holders, c.Wei = []string{}, []string{}, []string{}
	for _, e := range v.Events {
		c.Tokens = append(c.Tokens, e["token_id"].(string))
		c.Holders = append(c.Holders, e["holder_id"].(string))
		c.Start = append(c.Start, int64(e["start"].(float64)))
		end, has := e["end"].(float64)
		c.End = append(c.End, int64(end))
		c.HasEnd = append(c.HasEnd, map[bool]uint8{false: 0, true: 1}[has])
		w := "1"
		if s, ok := e["weight"].(string); ok {
			w = s
		} else if e["weight"] != nil {
			return c, false
		}
		b, ok := new(big.Int).SetString(w, 10)
		if !ok || b.Sign() < 0 || b.BitLen() > 256 {
			return c, false
		}
		c.Wei = append(c.Wei, w)
	}
	return c, true
}

func TestExactVectorsThroughC(t *testing.T) {
	leakCheck(t)
	var doc struct{ Vectors []exactVec }
	readJSON(t, "exact_vectors.json", &doc)
	ran := 0
	for _, v := range doc.Vectors {
		c, ok := v.cols()
		if !ok {
			continue
		}
		ran++
		t.Run(v.Name, func(t *testing.T) {
			var w *capitest.Window
			if v.Window != nil {
				w = &capitest.Window{T0: v.Window[0], T1: v.Window[1]}
			}
			got, err := capitest.ScoreExact(c, capitest.ScoreOpts{Now: v.Now, Window: w})
			if v.Error != nil {
				if err.Code != capitest.InvalidEvent || err.Index != v.Error.Index || err.Field != v.Error.Field {
					t.Fatalf("error %+v, want %+v", err, v.Error)
				}
				return
			}
			if err.Code != capitest.OK || got != v.Score {
				t.Fatalf("score %s (%+v), want %s", got, err, v.Score)
			}
			if w != nil && v.TWAB != "" {
				if tw, err := capitest.ScoreExact(c, capitest.ScoreOpts{Now: v.Now, Window: w, TWAB: true}); tw != v.TWAB {
					t.Fatalf("twab %s (%+v), want %s", tw, err, v.TWAB)
				}
			}
			h := newAgg(t, capitest.Options{Exact: true, History: true})
			if _, err := capitest.Record(h, c, 0, false); err.Code != capitest.OK {
				t.Fatal(err)
			}
			f, err := capitest.Query(h, capitest.Q{Now: v.Now, Window: w})
			if err.Code != capitest.OK {
				t.Fatal(err)
			}
			defer capitest.Free(f.Result)
			_, exact, _ := capitest.StatsExact(f.Result, 0, 0)
			sum := new(big.Int)
			for _, x := range exact {
				b, _ := new(big.Int).SetString(x, 10)
				sum.Add(sum, b)
			}
			if sum.String() != v.Score {
				t.Fatalf("rows sum to %s, want %s", sum, v.Score)
			}
		})
	}
	if ran < 10 {
		t.Fatalf("only %d exact vectors ran", ran)
	}
	// POH_RECORD_CHECK on an exact aggregator validates as exact mode
	// records: integer weights pass, a fractional one is refused.
	h := newAgg(t, capitest.Options{Exact: true})
	ints := capitest.Cols{Start: []int64{0, 1}, End: []int64{5, 6}, HasEnd: []uint8{1, 1}, Weight: []float64{2, 3},
		Tokens: []string{"T", "T"}, Holders: []string{"a", "b"}}
	if _, _, err := capitest.RecordFlags(h, ints, 10, capitest.RecordCheck); err.Code != capitest.OK {
		t.Fatalf("check of integer weights on an exact aggregator: %+v", err)
	}
	wei := ints
	wei.Weight = nil
	wei.Wei = []string{"2", "340282366920938463463374607431768211456"}
	if _, _, err := capitest.RecordFlags(h, wei, 10, capitest.RecordCheck); err.Code != capitest.OK {
		t.Fatalf("check of weight_u256 on an exact aggregator: %+v", err)
	}
	ints.Weight[1] = 2.5
	if _, _, err := capitest.RecordFlags(h, ints, 10, capitest.RecordCheck); err.Code != capitest.InvalidEvent ||
		err.Index != 1 || err.Reason != "not_integer" {
		t.Fatalf("check of a fractional weight on an exact aggregator: %+v", err)
	}
	// A float weight column in exact mode is taken only for integers.
	_, err := capitest.ScoreExact(capitest.Cols{Start: []int64{0}, End: []int64{5}, HasEnd: []uint8{1}, Weight: []float64{2.5}},
		capitest.ScoreOpts{Now: 10})
	if err.Code != capitest.InvalidEvent || err.Reason != "not_integer" {
		t.Fatalf("float weight 2.5 in exact mode: %+v", err)
	}
}

type transferVec struct {
	Name        string              `json:"name"`
	Kind        string              `json:"kind"`
	Now         int64               `json:"now"`
	Rows        []map[string]any    `json:"rows"`
	Opening     []map[string]string `json:"opening"`
	OpeningTime int64               `json:"opening_time"`
	ZeroHolder  bool                `json:"zero_holder"`
	Holds       [][]any             `json:"holds"`
	Scores      map[string]string   `json:"scores"`
	Error       *struct {
		Row    int64  `json:"row"`
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"error"`
}

func (v transferVec) rows() (capitest.TransferRows, *capitest.TransferRows, uint32) {
	var r capitest.TransferRows
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	num := func(m map[string]any, k string) int64 { f, _ := m[k].(float64); return int64(f) }
	for _, row := range v.Rows {
		r.Time, r.Block, r.LogIndex = append(r.Time, num(row, "time")), append(r.Block, num(row, "block")), append(r.LogIndex, num(row, "log_index"))
		r.Token, r.From, r.To, r.Holder = append(r.Token, str(row, "token_id")), append(r.From, str(row, "from_address")),
			append(r.To, str(row, "to_address")), append(r.Holder, str(row, "holder_id"))
		val, neg := str(row, "value")+str(row, "balance")+str(row, "delta"), uint8(0)
		if strings.HasPrefix(val, "-") {
			val, neg = val[1:], 1
		}
		r.Values, r.Negative = append(r.Values, val), append(r.Negative, neg)
		rm, _ := row["removed"].(bool)
		r.Removed = append(r.Removed, map[bool]uint8{false: 0, true: 1}[rm])
	}
	var op *capitest.TransferRows
	if v.Opening != nil {
		op = &capitest.TransferRows{}
		for _, b := range v.Opening {
			op.Token, op.Holder, op.Values = append(op.Token, b["token_id"]), append(op.Holder, b["holder_id"]), append(op.Values, b["balance"])
		}
	}
	flags := map[string]uint32{"transfer": 0, "balance": 1, "delta": 2}[v.Kind]
	if v.ZeroHolder {
		flags |= 4
	}
	return r, op, flags
}

func TestTransferVectorsThroughC(t *testing.T) {
	leakCheck(t)
	var doc struct{ Vectors []transferVec }
	readJSON(t, "transfer_vectors.json", &doc)
	for _, v := range doc.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			rows, opening, flags := v.rows()
			holds, err := capitest.Transfers(rows, opening, flags, v.OpeningTime, 0, 0)
			if v.Error != nil {
				if err.Code != capitest.InvalidEvent || err.Index != v.Error.Row || err.Field != v.Error.Field ||
					err.Reason != v.Error.Reason || !strings.HasPrefix(err.Message, fmt.Sprintf("row %d: ", v.Error.Row)) {
					t.Fatalf("error %+v, want %+v", err, v.Error)
				}
				return
			}
			if err.Code != capitest.OK {
				t.Fatal(err)
			}
			var got []string
			for _, h := range holds {
				end := "<nil>"
				if h.HasEnd {
					end = fmt.Sprint(h.End)
				}
				got = append(got, fmt.Sprintf("[%s %s %d %s %s]", h.Token, h.Holder, h.Start, end, h.Weight))
			}
			var want []string
			for _, h := range v.Holds {
				end := "<nil>"
				if h[3] != nil {
					end = fmt.Sprint(int64(h[3].(float64)))
				}
				want = append(want, fmt.Sprintf("[%s %s %d %s %s]", h[0], h[1], int64(h[2].(float64)), end, h[4]))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("holds\n got %v\nwant %v", got, want)
			}
			// Straight into an exact aggregator: the holders' rows are the scores.
			h := newAgg(t, capitest.Options{Exact: true})
			if _, err := capitest.Transfers(rows, opening, flags, v.OpeningTime, h, 0); err.Code != capitest.OK {
				t.Fatal(err)
			}
			f, _ := capitest.Query(h, capitest.Q{Now: v.Now})
			defer capitest.Free(f.Result)
			st, exact, _ := capitest.StatsExact(f.Result, 0, 0)
			scores := map[string]string{}
			for i, s := range st {
				if exact[i] != "0" {
					scores[s.HolderID] = exact[i]
				}
			}
			if fmt.Sprint(scores) != fmt.Sprint(v.Scores) {
				t.Fatalf("scores %v, want %v", scores, v.Scores)
			}
		})
	}
	// Recording into a float aggregator is refused: its weights are exact.
	h := newAgg(t, capitest.Options{})
	rows, _, _ := doc.Vectors[0].rows()
	if _, err := capitest.Transfers(rows, nil, 0, 0, h, 0); err.Code != capitest.InvalidArgument {
		t.Fatalf("into a float aggregator: %+v", err)
	}
}

func TestAllocateThroughC(t *testing.T) {
	leakCheck(t)
	got, err := capitest.Allocate([]string{"alice", "bob", "carol"}, []float64{20, 60, 0}, nil, "1000000000000000000000000", "", 0)
	if err.Code != capitest.OK || len(got) != 2 || got[0].Share != 1 || got[0].Amount != "750000000000000000000000" ||
		got[1].Share != 0 || got[1].Amount != "250000000000000000000000" {
		t.Fatalf("README split: %+v %+v", got, err)
	}
	// Exact scores: three equal holders of 10 units; remainders go by id.
	got, err = capitest.Allocate([]string{"c", "a", "b"}, nil, []string{"5", "5", "5"}, "10", "", 0)
	if err.Code != capitest.OK || len(got) != 3 || got[0].Share != 1 || got[0].Amount != "4" || got[2].Amount != "3" {
		t.Fatalf("exact split: %+v %+v", got, err)
	}
	// With a cap: a (score 8) is capped at 5, the rest split 5 between b and c.
	got, _ = capitest.Allocate([]string{"a", "b", "c"}, []float64{8, 1, 1}, nil, "12", "5", 0)
	if len(got) != 3 || got[0].Amount != "5" || got[1].Amount != "4" && got[1].Amount != "3" {
		t.Fatalf("capped: %+v", got)
	}
	for _, tc := range []struct {
		ids    []string
		scores []float64
		pool   string
		cap    string
		code   int
	}{
		{[]string{"a"}, []float64{1}, "100", "99", capitest.State},
		{[]string{"a"}, []float64{0}, "100", "", capitest.State},
		{[]string{"a", "a"}, []float64{1, 2}, "100", "", capitest.InvalidArgument},
		{[]string{""}, []float64{1}, "100", "", capitest.InvalidEvent},
		{[]string{"a"}, []float64{-1}, "100", "", capitest.InvalidArgument},
	} {
		if _, err := capitest.Allocate(tc.ids, tc.scores, nil, tc.pool, tc.cap, 0); err.Code != tc.code {
			t.Errorf("%+v: %+v, want %d", tc, err, tc.code)
		}
	}
}

// TestAllocateLayouts: exact scores as int64 or Arrow decimal128 split as
// their 48-byte form does, and the amounts come out as Arrow decimals
// (little-endian) or are refused when they have too many digits.
func TestAllocateLayouts(t *testing.T) {
	leakCheck(t)
	ids := []string{"c", "a", "b", "d"}
	scores := []int64{5, 5, 5, 1 << 40}
	pool := "123456789012345678901234567890"
	be := make([]byte, 48*len(ids))
	i64 := make([]byte, 8*len(ids))
	d128 := make([]byte, 16*len(ids))
	for i, v := range scores {
		big.NewInt(v).FillBytes(be[48*i : 48*i+48])
		binary.NativeEndian.PutUint64(i64[8*i:], uint64(v))
		binary.LittleEndian.PutUint64(d128[16*i:], uint64(v))
	}
	wantShares, wantBE, err := capitest.AllocateRaw(ids, be, 0, pool, 0, 48)
	if err.Code != capitest.OK || len(wantShares) != 4 {
		t.Fatalf("48-byte layout: %+v %v", err, wantShares)
	}
	for _, in := range []struct {
		raw   []byte
		flags uint32
	}{{i64, capitest.SharesInt64}, {d128, capitest.SharesDecimal128}} {
		for _, out := range []struct {
			flags uint32
			width int
		}{{0, 48}, {capitest.AwardsDecimal128, 16}, {capitest.AwardsDecimal256, 32}} {
			shares, amounts, err := capitest.AllocateRaw(ids, in.raw, in.flags, pool, out.flags, out.width)
			if err.Code != capitest.OK || !slices.Equal(shares, wantShares) {
				t.Fatalf("layout %d → %d: %v %+v, want %v", in.flags, out.flags, shares, err, wantShares)
			}
			for i := range shares {
				want := new(big.Int).SetBytes(wantBE[48*i : 48*i+48])
				got := new(big.Int)
				if out.width == 48 {
					got.SetBytes(amounts[48*i : 48*i+48])
				} else {
					le := slices.Clone(amounts[out.width*i : out.width*i+out.width])
					slices.Reverse(le)
					got.SetBytes(le)
				}
				if got.Cmp(want) != 0 {
					t.Fatalf("layout %d → %d row %d: amount %s, want %s", in.flags, out.flags, i, got, want)
				}
			}
		}
	}
	// A negative int64 or decimal128 score; two layouts at once; an amount
	// of 39 digits into decimal128 (it fits decimal256).
	neg64 := slices.Clone(i64)
	binary.NativeEndian.PutUint64(neg64[8:], uint64(1<<64-3))
	neg128 := slices.Clone(d128)
	binary.LittleEndian.PutUint64(neg128[16+8:], 1<<63)
	for _, tc := range []struct {
		raw          []byte
		flags, award uint32
		pool, want   string
	}{
		{neg64, capitest.SharesInt64, 0, pool, `shares[1] ("a"): score -3 must be >= 0`},
		{neg128, capitest.SharesDecimal128, 0, pool, `shares[1] ("a"): score -170141183460469231731687303715884105723 must be >= 0`},
		{d128, capitest.SharesInt64 | capitest.SharesDecimal128, 0, pool, "pass one layout"},
		{i64, capitest.SharesInt64, capitest.AwardsDecimal128 | capitest.AwardsDecimal256, pool, "pass one layout"},
		{i64, capitest.SharesInt64, capitest.AwardsDecimal128, "2" + strings.Repeat("0", 38), "has more than 38 digits"},
	} {
		_, _, err := capitest.AllocateRaw(ids, tc.raw, tc.flags, tc.pool, tc.award, 16)
		if err.Code != capitest.InvalidArgument || !strings.Contains(err.Message, tc.want) {
			t.Errorf("%d/%d: %+v, want %q", tc.flags, tc.award, err, tc.want)
		}
	}
	if _, amounts, err := capitest.AllocateRaw(ids, i64, capitest.SharesInt64, "2"+strings.Repeat("0", 38),
		capitest.AwardsDecimal256, 32); err.Code != capitest.OK || len(amounts) != 4*32 {
		t.Fatalf("39 digits into decimal256: %+v", err)
	}
}
