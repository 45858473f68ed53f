package core

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/holiman/uint256"
)

// bigOf is the reference value of an Int, by math/big.
func bigInt(s string) *big.Int {
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return b
}

func TestIntArithmeticMatchesBig(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	max256 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	for i := 0; i < 2000; i++ {
		var x Int
		ref := new(big.Int)
		for k := 0; k < 1+r.IntN(20); k++ {
			var w uint256.Int
			switch r.IntN(4) {
			case 0:
				w.SetUint64(r.Uint64())
			case 1:
				w.SetFromBig(max256)
			default:
				w = uint256.Int{r.Uint64(), r.Uint64(), r.Uint64() >> r.IntN(64), r.Uint64() >> r.IntN(64)}
			}
			s := uint64(r.Int64N(MaxTime + 1))
			x.addMul(&w, s)
			ref.Add(ref, new(big.Int).Mul(w.ToBig(), new(big.Int).SetUint64(s)))
		}
		if x.Big().Cmp(ref) != 0 || x.String() != ref.String() {
			t.Fatalf("sum %s, want %s", x.String(), ref)
		}
		want, _ := new(big.Float).SetInt(ref).Float64()
		if got := x.Float(); got != want {
			t.Fatalf("Float(%s) = %v, want %v", ref, got, want)
		}
		d := 1 + r.Uint64N(uint64(MaxTime))
		if q := x.DivFloor(d); q.Big().Cmp(new(big.Int).Quo(ref, new(big.Int).SetUint64(d))) != 0 {
			t.Fatalf("%s / %d = %s", ref, d, q.String())
		}
		var y Int
		if !y.SetBig(ref) || y != x {
			t.Fatalf("SetBig round trip of %s", ref)
		}
		b := x.Bytes()
		var z Int
		z.SetBytes(&b)
		if z != x {
			t.Fatal("Bytes round trip")
		}
	}
}

func TestIntFloatRoundsToNearestEven(t *testing.T) {
	for _, s := range []string{"9007199254740993", "9007199254740995", "18446744073709551617",
		"36893488147419103231", "340282366920938463463374607431768211455",
		"340282366920938463463374607431768211457", "1", "0"} {
		var x Int
		x.SetBig(bigInt(s))
		want, _ := new(big.Float).SetInt(bigInt(s)).Float64()
		if got := x.Float(); got != want {
			t.Errorf("Float(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestParseWei(t *testing.T) {
	for _, tc := range []struct {
		in     string
		reason Reason
	}{{"0", ""}, {"115792089237316195423570985008687907853269984665640564039457584007913129639935", ""},
		{"115792089237316195423570985008687907853269984665640564039457584007913129639936", ReasonOutOfRange},
		{"-1", ReasonNegative}, {"1.5", ReasonNotInteger}, {"1e3", ReasonNotInteger}, {"", ReasonEmpty},
		{" 1", ReasonNotInteger}, {"0x10", ReasonNotInteger}} {
		w, err := ParseWei(2, tc.in)
		switch {
		case tc.reason == "" && (err != nil || new(uint256.Int).SetBytes32(w[:]).Dec() != tc.in):
			t.Errorf("ParseWei(%q) = %v, %v", tc.in, w, err)
		case tc.reason != "" && (err == nil || err.Reason != tc.reason || err.Index != 2 || err.Field != "weight"):
			t.Errorf("ParseWei(%q): %v, want reason %s", tc.in, err, tc.reason)
		}
	}
}

type exactVector struct {
	Name   string  `json:"name"`
	Now    int64   `json:"now"`
	Window []int64 `json:"window"`
	Events []struct {
		Token  string          `json:"token_id"`
		Holder string          `json:"holder_id"`
		Start  int64           `json:"start"`
		End    *int64          `json:"end"`
		Weight json.RawMessage `json:"weight"`
	} `json:"events"`
	Score     string         `json:"score"`
	TWAB      string         `json:"twab"`
	Error     *vectorError   `json:"error"`
	TWABError *vectorError   `json:"twab_error"`
	Extra     map[string]any `json:"-"`
}

type vectorError struct {
	Index  int    `json:"index"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func loadExactVectors(t *testing.T) []exactVector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "exact_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Vectors []exactVector }
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Vectors) < 10 {
		t.Fatalf("only %d exact vectors", len(doc.Vectors))
	}
	return doc.Vectors
}

// events of an exact vector: a string weight is exact (ParseWei), a number
// a float weight; the first weight that does not parse is the vector's error.
func (v *exactVector) events() ([]HoldEvent, *ValidationError) {
	out := make([]HoldEvent, len(v.Events))
	for i, e := range v.Events {
		out[i] = HoldEvent{TokenID: e.Token, HolderID: e.Holder, Start: e.Start, Weight: 1}
		if e.End != nil {
			out[i].End, out[i].HasEnd = *e.End, true
		}
		switch {
		case len(e.Weight) == 0:
		case e.Weight[0] == '"':
			var s string
			_ = json.Unmarshal(e.Weight, &s)
			w, err := ParseWei(i, s)
			if err != nil {
				return nil, err
			}
			out[i].Wei = w
		default:
			_ = json.Unmarshal(e.Weight, &out[i].Weight)
		}
	}
	return out, nil
}

func (v *exactVector) window() *Window {
	if v.Window == nil {
		return nil
	}
	return &Window{v.Window[0], v.Window[1]}
}

func sameError(t *testing.T, err error, want *vectorError) {
	t.Helper()
	ve, ok := err.(*ValidationError)
	if !ok || ve.Index != want.Index || ve.Field != want.Field || string(ve.Reason) != want.Reason {
		t.Fatalf("error %v, want %+v", err, want)
	}
}

func TestExactVectors(t *testing.T) {
	for _, v := range loadExactVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			events, perr := v.events()
			if perr != nil {
				if v.Error == nil {
					t.Fatal(perr)
				}
				sameError(t, perr, v.Error)
				return
			}
			for _, cols := range []bool{false, true} {
				score := func(o ScoreOptions) (Value, error) {
					if cols {
						return ScoreColumns(exactColumns(events), o)
					}
					return Score(events, o)
				}
				got, err := score(ScoreOptions{Now: v.Now, Window: v.window(), Exact: true})
				if v.Error != nil {
					sameError(t, err, v.Error)
					continue
				}
				if err != nil || got.Int == nil || got.Int.String() != v.Score {
					t.Fatalf("columns %v: score %v (%v), want %s", cols, got.Int, err, v.Score)
				}
				if want, _ := new(big.Float).SetInt(bigInt(v.Score)).Float64(); got.Float != want {
					t.Fatalf("float %v, want %v", got.Float, want)
				}
				if v.window() == nil {
					continue
				}
				tw, err := score(ScoreOptions{Now: v.Now, Window: v.window(), Exact: true, TWAB: true})
				if v.TWABError != nil {
					sameError(t, err, v.TWABError)
				} else if err != nil || tw.Int.String() != v.TWAB {
					t.Fatalf("twab %v (%v), want %s", tw.Int, err, v.TWAB)
				}
			}
			// The aggregator, recorded at 0 (every end ahead) and at now.
			for _, at := range []int64{0, v.Now} {
				a := newAgg(t, Options{Exact: true, History: v.window() != nil})
				if _, err := a.Record(at, events, RecordOptions{}); err != nil {
					if v.Error == nil {
						t.Fatal(err)
					}
					sameError(t, err, v.Error)
					continue
				}
				rows, err := a.Query(Query{Now: v.Now, Window: v.window()})
				if err != nil {
					t.Fatal(err)
				}
				var sum Int
				for _, r := range rows {
					sum.add(r.Exact)
				}
				if sum.String() != v.Score {
					t.Fatalf("recorded at %d: holders sum to %s, want %s", at, sum.String(), v.Score)
				}
			}
		})
	}
}

// exactColumns is events as columns with a Wei column (float weights that
// are integers become exact ones; others stay float, which exact mode
// rejects as it would the event).
func exactColumns(events []HoldEvent) *Columns {
	c := toColumns(events)
	wei := make([]byte, 0, 32*len(events))
	allExact := true
	for _, e := range events {
		if e.Wei != nil {
			wei = append(wei, e.Wei[:]...)
			continue
		}
		if e.Weight != math.Trunc(e.Weight) {
			allExact = false
		}
		var w uint256.Int
		w.SetUint64(uint64(e.Weight))
		wei = append(wei, WeiOf(&w)[:]...)
	}
	if allExact {
		c.Weight, c.Wei = nil, wei
	}
	return c
}

// Two holders whose exact scores differ by 1 at 2^70 share one float64:
// exact mode ranks them by the integers.
func TestExactRankingUsesIntegers(t *testing.T) {
	a := newAgg(t, Options{Exact: true})
	big1, _ := ParseWei(0, "1180591620717411303424") // 2^70
	big2, _ := ParseWei(0, "1180591620717411303425") // 2^70 + 1
	evs := []HoldEvent{
		{TokenID: "T", HolderID: "a", Start: 0, End: 1, HasEnd: true, Wei: big1},
		{TokenID: "T", HolderID: "b", Start: 0, End: 1, HasEnd: true, Wei: big2},
	}
	if _, err := a.Record(10, evs, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []Query{{Now: 10}, {Now: 10, N: 1}, {Now: 10, Token: "T", N: 2}} {
		rows, _ := a.Query(q)
		if rows[0].HolderID != "b" || rows[0].Score != rows[len(rows)-1].Score && len(rows) > 1 {
			t.Fatalf("%+v: %+v", q, rows)
		}
		if rows[0].Exact.String() != "1180591620717411303425" {
			t.Fatalf("%+v: exact %s", q, rows[0].Exact)
		}
	}
}

func TestExactModeRefusesFloatAndFloatModeRefusesExact(t *testing.T) {
	x := newAgg(t, Options{Exact: true})
	_, err := x.Record(1, []HoldEvent{{TokenID: "T", HolderID: "a", Start: 0, End: 1, HasEnd: true, Weight: 0.5}}, RecordOptions{})
	if ve, ok := err.(*ValidationError); !ok || ve.Reason != ReasonNotInteger {
		t.Fatalf("exact mode, weight 0.5: %v", err)
	}
	f := newAgg(t, Options{})
	w, _ := ParseWei(0, "5")
	_, err = f.Record(1, []HoldEvent{{TokenID: "T", HolderID: "a", Start: 0, End: 1, HasEnd: true, Weight: 1, Wei: w}}, RecordOptions{})
	if ve, ok := err.(*ValidationError); !ok || ve.Reason != ReasonExactWeight {
		t.Fatalf("float mode, exact weight: %v", err)
	}
	if _, err := ScoreColumns(&Columns{Start: []int64{0}, Wei: w[:]}, ScoreOptions{Now: 5}); err == nil {
		t.Fatal("float-mode score took an exact weight column")
	}
}

// Export/Import of an exact aggregator (history, live holds, closed and
// future ends) rebuilds one that answers every query with the same integers.
func TestExactExportImport(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	a := newAgg(t, Options{Exact: true, History: true, Shards: 4})
	for step := 0; step < 50; step++ {
		var evs []HoldEvent
		for i := 0; i < 20; i++ {
			w := uint256.Int{r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64() >> 8}
			e := HoldEvent{TokenID: fmt.Sprintf("t%d", r.IntN(3)), HolderID: fmt.Sprintf("h%d", r.IntN(10)),
				Start: int64(step*10 + r.IntN(50)), Wei: WeiOf(&w)}
			if r.IntN(3) > 0 {
				e.End, e.HasEnd = e.Start+int64(r.IntN(200)), true
			}
			evs = append(evs, e)
		}
		if _, err := a.Record(int64(step*10), evs, RecordOptions{}); err != nil {
			t.Fatal(err)
		}
		if step%7 == 3 {
			_, _ = a.CloseHold(int64(step*10), "t1", "h3", int64(step*10+5))
		}
	}
	st, m, err := a.Export()
	if err != nil {
		t.Fatal(err)
	}
	b := newAgg(t, Options{Exact: true, History: true, Shards: 16})
	if err := b.Import(st, m); err != nil {
		t.Fatal(err)
	}
	for _, q := range []Query{{Now: 300}, {Now: 1000, Token: "t1"}, {Now: 700, Window: &Window{100, 400}}} {
		want, _ := a.Query(q)
		got, _ := b.Query(q)
		for i := range want {
			if got[i].HolderID != want[i].HolderID || got[i].Exact.Cmp(want[i].Exact) != 0 || got[i].TotalSeconds != want[i].TotalSeconds {
				t.Fatalf("%+v row %d: %+v (%s), want %+v (%s)", q, i, got[i], got[i].Exact, want[i], want[i].Exact)
			}
		}
	}
	f := newAgg(t, Options{History: true})
	if err := f.Import(st, m); err == nil {
		t.Fatal("a float aggregator imported an exact state")
	}
}
