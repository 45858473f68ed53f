package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	oldrand "math/rand"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/holiman/uint256"
)

type transferVector struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Now         int64  `json:"now"`
	Rows        []map[string]any
	Opening     []map[string]string `json:"opening"`
	OpeningTime int64               `json:"opening_time"`
	ZeroHolder  bool                `json:"zero_holder"`
	Holds       [][]any             `json:"holds"`
	Scores      map[string]string   `json:"scores"`
	Error       *struct {
		Row    int    `json:"row"`
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"error"`
}

func dec(s any) uint256.Int {
	var v uint256.Int
	str, _ := s.(string)
	if len(str) > 0 && str[0] == '-' {
		str = str[1:]
	}
	if err := v.SetFromDecimal(str); err != nil {
		panic(err)
	}
	return v
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// Transfer is one row for the tests, converted to TransferColumns.
type Transfer struct {
	Token, From, To, Holder string
	Time, Block, LogIndex   int64
	Value                   uint256.Int
	Negative, Removed       bool
}

func idCol(ids []string) IDColumn {
	c := IDColumn{Offsets: []int64{0}}
	for _, s := range ids {
		c.Data = append(c.Data, s...)
		c.Offsets = append(c.Offsets, int64(len(c.Data)))
	}
	return c
}

func columnsOf(rows []Transfer) *TransferColumns {
	var tok, from, to, hol []string
	c := &TransferColumns{}
	for _, r := range rows {
		tok, from, to, hol = append(tok, r.Token), append(from, r.From), append(to, r.To), append(hol, r.Holder)
		c.Time, c.Block, c.LogIndex = append(c.Time, r.Time), append(c.Block, r.Block), append(c.LogIndex, r.LogIndex)
		b := r.Value.Bytes32()
		c.Value = append(c.Value, b[:]...)
		c.Negative = append(c.Negative, b2u(r.Negative))
		c.Removed = append(c.Removed, b2u(r.Removed))
	}
	c.Token, c.From, c.To, c.Holder = idCol(tok), idCol(from), idCol(to), idCol(hol)
	if c.Value == nil {
		c.Value = []byte{}
	}
	return c
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func intervalsOf(rows []Transfer, o TransferOptions) (*Holds, error) {
	return Intervals(columnsOf(rows), o)
}

func (v *transferVector) input() ([]Transfer, TransferOptions) {
	o := TransferOptions{OpeningTime: v.OpeningTime, ZeroHolder: v.ZeroHolder}
	o.Kind = map[string]TransferKind{"transfer": KindTransfer, "balance": KindBalance, "delta": KindDelta}[v.Kind]
	for _, b := range v.Opening {
		o.Opening = append(o.Opening, Balance{Token: b["token_id"], Holder: b["holder_id"], Value: dec(b["balance"])})
	}
	rows := make([]Transfer, len(v.Rows))
	for i, r := range v.Rows {
		t := Transfer{Time: num(r["time"]), Block: num(r["block"]), LogIndex: num(r["log_index"])}
		t.Token, _ = r["token_id"].(string)
		t.From, _ = r["from_address"].(string)
		t.To, _ = r["to_address"].(string)
		t.Holder, _ = r["holder_id"].(string)
		t.Removed, _ = r["removed"].(bool)
		switch {
		case r["value"] != nil:
			t.Value = dec(r["value"])
		case r["balance"] != nil:
			t.Value = dec(r["balance"])
		case r["delta"] != nil:
			t.Value = dec(r["delta"])
			t.Negative = r["delta"].(string)[0] == '-'
		}
		rows[i] = t
	}
	return rows, o
}

func loadTransferVectors(t *testing.T) []transferVector {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "transfer_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Vectors []transferVector }
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Vectors) < 10 {
		t.Fatalf("%d vectors", len(doc.Vectors))
	}
	return doc.Vectors
}

func TestTransferVectors(t *testing.T) {
	for _, v := range loadTransferVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			rows, o := v.input()
			holds, err := intervalsOf(rows, o)
			if v.Error != nil {
				var te *TransferError
				if !errors.As(err, &te) || te.Row != fmt.Sprintf("row %d", v.Error.Row) || te.Field != v.Error.Field ||
					te.Reason != v.Error.Reason {
					t.Fatalf("error %v, want %+v", err, v.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got [][]any
			for _, h := range holds.Rows {
				var end any
				if h.HasEnd {
					end = float64(h.End)
				}
				p := holds.Pairs[h.Pair]
				got = append(got, []any{p.Token, p.Holder, float64(h.Start), end, h.Weight.Dec()})
			}
			slices.SortStableFunc(got, func(a, b []any) int {
				return cmpAny(a, b)
			})
			if fmt.Sprint(got) != fmt.Sprint(v.Holds) {
				t.Fatalf("holds\n got %v\nwant %v", got, v.Holds)
			}
			// Recorded into an exact aggregator, the holders' rows are the scores.
			a := newAgg(t, Options{Exact: true})
			if _, err := a.Record(0, holds.Events(), RecordOptions{}); err != nil {
				t.Fatal(err)
			}
			rows2, _ := a.Query(Query{Now: v.Now})
			scores := map[string]string{}
			for _, r := range rows2 {
				if !r.Exact.IsZero() {
					scores[r.HolderID] = r.Exact.String()
				}
			}
			if fmt.Sprint(scores) != fmt.Sprint(v.Scores) {
				t.Fatalf("scores %v, want %v", scores, v.Scores)
			}
		})
	}
}

func cmpAny(a, b []any) int {
	for i := 0; i < 3; i++ {
		x, y := fmt.Sprint(a[i]), fmt.Sprint(b[i])
		if i == 2 {
			if a[i].(float64) != b[i].(float64) {
				if a[i].(float64) < b[i].(float64) {
					return -1
				}
				return 1
			}
			continue
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// For random histories of mints, transfers and burns, the holders' exact
// scores add up to the integral of the total supply over time, and holds
// over adjacent windows add up to the whole.
func TestTransfersConserveSupplyTime(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 50; trial++ {
		holders := []string{"0x" + fmt.Sprintf("%040x", 1), "0x" + fmt.Sprintf("%040X", 0xabc), "0x" + fmt.Sprintf("%040x", 0xdef)}
		bal := map[string]*big.Int{}
		for _, h := range holders {
			bal[CanonicalID(h)] = new(big.Int)
		}
		supply, integral := new(big.Int), new(big.Int)
		var rows []Transfer
		now, last := int64(0), int64(0)
		for i := 0; i < 200; i++ {
			now += r.Int64N(20)
			integral.Add(integral, new(big.Int).Mul(supply, big.NewInt(now-last)))
			last = now
			from, to := ZeroAddress, holders[r.IntN(3)]
			if r.IntN(3) > 0 {
				from = holders[r.IntN(3)]
			}
			if r.IntN(5) == 0 {
				to = ZeroAddress
			}
			have := supply
			if from != ZeroAddress {
				have = bal[CanonicalID(from)]
			}
			v := new(big.Int).Rand(oldrand.New(randSource{r}), new(big.Int).Add(have, big.NewInt(1)))
			if from == ZeroAddress {
				v = new(big.Int).Lsh(big.NewInt(r.Int64N(1<<40)), uint(r.IntN(150)))
			}
			if from != ZeroAddress {
				bal[CanonicalID(from)].Sub(bal[CanonicalID(from)], v)
			} else {
				supply.Add(supply, v)
			}
			if to != ZeroAddress {
				bal[CanonicalID(to)].Add(bal[CanonicalID(to)], v)
			} else {
				supply.Sub(supply, v)
			}
			var u uint256.Int
			u.SetFromBig(v)
			rows = append(rows, Transfer{Token: "T", From: from, To: to, Value: u, Time: now, Block: int64(i)})
		}
		end := now + 100
		integral.Add(integral, new(big.Int).Mul(supply, big.NewInt(end-last)))
		holds, err := intervalsOf(rows, TransferOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v, err := Score(holds.Events(), ScoreOptions{Now: end, Exact: true})
		if err != nil {
			t.Fatal(err)
		}
		if v.Int.Big().Cmp(integral) != 0 {
			t.Fatalf("trial %d: holders sum to %s, the supply integral is %s", trial, v.Int, integral)
		}
		mid := r.Int64N(end + 1)
		left, _ := Score(holds.Events(), ScoreOptions{Now: end, Exact: true, Window: &Window{0, mid}})
		right, _ := Score(holds.Events(), ScoreOptions{Now: end, Exact: true, Window: &Window{mid, end}})
		sum := *left.Int
		sum.add(right.Int)
		if sum != *v.Int {
			t.Fatalf("windows [0,%d) + [%d,%d) = %s, whole %s", mid, mid, end, sum.String(), v.Int)
		}
		// Float mode agrees to float precision.
		f, _ := Score(floatEvents(holds.Events()), ScoreOptions{Now: end})
		if want := v.Int.Float(); f.Float != want && (f.Float-want)/want > 1e-12 {
			t.Fatalf("float %v, exact %v", f.Float, want)
		}
	}
}

type randSource struct{ r *rand.Rand }

func (s randSource) Int63() int64 { return s.r.Int64() }
func (s randSource) Seed(int64)   {}

// floatEvents is events with their exact weights as float weights.
func floatEvents(evs []HoldEvent) []HoldEvent {
	out := slices.Clone(evs)
	for i := range out {
		w := new(uint256.Int).SetBytes32(out[i].Wei[:])
		out[i].Weight, _ = new(big.Float).SetInt(w.ToBig()).Float64()
		out[i].Wei = nil
	}
	return out
}

func TestTransferErrorsNameTheRow(t *testing.T) {
	rows := []Transfer{{Token: "T", From: ZeroAddress, To: "0x12", Time: 1, Value: *uint256.NewInt(1)}}
	_, err := intervalsOf(rows, TransferOptions{Row: func(i int) string { return fmt.Sprintf("transfers.csv:%d", i+2) }})
	var te *TransferError
	if !errors.As(err, &te) || te.Row != "transfers.csv:2" || te.Field != "to_address" {
		t.Fatalf("malformed address: %v", err)
	}
	rows[0].To, rows[0].Time = "0x"+fmt.Sprintf("%040x", 7), -5
	if _, err := intervalsOf(rows, TransferOptions{}); err == nil || !errors.As(err, &te) || te.Field != "time" {
		t.Fatalf("bad time: %v", err)
	}
}
