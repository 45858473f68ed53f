package core

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// refAllocate is the contract written with big.Rat, independently of
// Allocate: quotas, floors, the largest remainders (ties by holder id), and
// the cap applied round by round.
func refAllocate(ids []string, scores []*big.Rat, pool *big.Int, cap *big.Int) map[string]*big.Int {
	out := map[string]*big.Int{}
	rest := map[string]*big.Rat{}
	for i, id := range ids {
		if scores[i].Sign() > 0 {
			rest[id] = scores[i]
		}
	}
	remaining := new(big.Int).Set(pool)
	for cap != nil && len(rest) > 0 {
		total := new(big.Rat)
		for _, s := range rest {
			total.Add(total, s)
		}
		var capped []string
		for id, s := range rest {
			q := new(big.Rat).Mul(new(big.Rat).SetInt(remaining), s)
			q.Quo(q, total)
			if q.Cmp(new(big.Rat).SetInt(cap)) >= 0 {
				capped = append(capped, id)
			}
		}
		if len(capped) == 0 {
			break
		}
		for _, id := range capped {
			out[id] = new(big.Int).Set(cap)
			remaining.Sub(remaining, cap)
			delete(rest, id)
		}
	}
	total := new(big.Rat)
	for _, s := range rest {
		total.Add(total, s)
	}
	type fr struct {
		id  string
		rem *big.Rat
	}
	var fracs []fr
	left := new(big.Int).Set(remaining)
	for id, s := range rest {
		q := new(big.Rat).Mul(new(big.Rat).SetInt(remaining), s)
		q.Quo(q, total)
		fl := new(big.Int).Quo(q.Num(), q.Denom())
		out[id] = fl
		left.Sub(left, fl)
		fracs = append(fracs, fr{id, new(big.Rat).Sub(q, new(big.Rat).SetInt(fl))})
	}
	sort.Slice(fracs, func(a, b int) bool {
		if c := fracs[a].rem.Cmp(fracs[b].rem); c != 0 {
			return c > 0
		}
		return fracs[a].id < fracs[b].id
	})
	for _, f := range fracs[:left.Int64()] {
		out[f.id].Add(out[f.id], big.NewInt(1))
	}
	return out
}

func TestAllocateMatchesRationalReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for trial := 0; trial < 300; trial++ {
		n := 1 + r.IntN(30)
		exact := trial%2 == 0
		var shares []Share
		var ids []string
		var rats []*big.Rat
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("h%03d", r.IntN(1000)*1000+i)
			var s Share
			s.HolderID = id
			if exact {
				v := new(big.Int).Lsh(big.NewInt(r.Int64N(1000)), uint(r.IntN(300)))
				if r.IntN(4) == 0 {
					v.SetInt64(r.Int64N(3)) // small scores: remainders tie
				}
				var x Int
				x.SetBig(v)
				s.Exact = &x
				rats = append(rats, new(big.Rat).SetInt(v))
			} else {
				s.Float = []float64{0, 1, 0.1, 1e-300, 3.5e200, r.Float64() * 1e6}[r.IntN(6)]
				rats = append(rats, new(big.Rat).SetFloat64(s.Float))
			}
			shares = append(shares, s)
			ids = append(ids, id)
		}
		pool := new(big.Int).Lsh(big.NewInt(r.Int64N(1<<40)), uint(r.IntN(100)))
		var cap *big.Int
		if r.IntN(3) == 0 {
			cap = new(big.Int).Quo(pool, big.NewInt(int64(1+r.IntN(n))))
			cap.Add(cap, big.NewInt(int64(r.IntN(3))))
		}
		got, err := Allocate(shares, pool, AllocateOptions{Cap: cap})
		positive := 0
		for _, q := range rats {
			if q.Sign() > 0 {
				positive++
			}
		}
		if positive == 0 {
			if pool.Sign() != 0 && !errors.Is(err, ErrNoneEligible) {
				t.Fatalf("no eligible holder: %v", err)
			}
			continue
		}
		if cap != nil && new(big.Int).Mul(cap, big.NewInt(int64(positive))).Cmp(pool) < 0 {
			if !errors.Is(err, ErrInfeasibleCap) {
				t.Fatalf("infeasible cap: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		want := refAllocate(ids, rats, pool, cap)
		sum := new(big.Int)
		for i, a := range got {
			id := shares[a.Share].HolderID
			if want[id] == nil || a.Amount.Big().Cmp(want[id]) != 0 {
				t.Fatalf("trial %d: %s gets %s, want %v", trial, id, &a.Amount, want[id])
			}
			if p := &got[max(i-1, 0)]; i > 0 && (p.Amount.Cmp(&a.Amount) < 0 || p.Amount.Cmp(&a.Amount) == 0 && shares[p.Share].HolderID > id) {
				t.Fatalf("trial %d: rows %d, %d out of order", trial, i-1, i)
			}
			sum.Add(sum, a.Amount.Big())
		}
		if sum.Cmp(pool) != 0 || len(got) != len(want) {
			t.Fatalf("trial %d: %d rows summing to %s; want %d rows, pool %s", trial, len(got), sum, len(want), pool)
		}
	}
}

func TestAllocateErrors(t *testing.T) {
	pool := big.NewInt(100)
	for _, tc := range []struct {
		shares []Share
		o      AllocateOptions
		want   string
	}{
		{[]Share{{HolderID: "a", Float: 1}, {HolderID: "a", Float: 2}}, AllocateOptions{}, "appears twice"},
		{[]Share{{HolderID: "a", Float: -1}}, AllocateOptions{}, "must be a finite number >= 0"},
		{[]Share{{HolderID: "a", Float: 1}, {HolderID: "b", Exact: &Int{1}}}, AllocateOptions{}, "mixed"},
		{[]Share{{HolderID: "a", Float: 1}}, AllocateOptions{Cap: big.NewInt(99)}, "cap 99 x 1 eligible"},
		{[]Share{{HolderID: "a", Float: 1}}, AllocateOptions{MinScore: 2}, "no holder is eligible"},
	} {
		if _, err := Allocate(tc.shares, pool, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.shares, err, tc.want)
		}
	}
	got, err := Allocate(nil, new(big.Int), AllocateOptions{})
	if err != nil || len(got) != 0 {
		t.Fatal(got, err)
	}
	// The README's airdrop: bob 60, alice 20 of 10^24.
	p, _ := new(big.Int).SetString("1000000000000000000000000", 10)
	got, _ = Allocate([]Share{{HolderID: "alice", Float: 20}, {HolderID: "bob", Float: 60}, {HolderID: "carol"}}, p, AllocateOptions{})
	if len(got) != 2 || got[0].Share != 1 || got[0].Amount.String() != "750000000000000000000000" ||
		got[1].Amount.String() != "250000000000000000000000" || !slices.IsSortedFunc(got, func(a, b Award) int { return b.Amount.Cmp(&a.Amount) }) {
		t.Fatalf("%+v", got)
	}
}

// TestAllocateWidePathsAgree: the 256-bit split and the math/big one give
// the same awards, in the same order, on inputs both can take (many equal
// scores, so remainders and amounts tie), with and without a cap.
func TestAllocateWidePathsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for trial := 0; trial < 400; trial++ {
		n := 1 + r.IntN(200)
		exact := trial%2 == 0
		shares := make([]Share, n)
		for i := range shares {
			shares[i].HolderID = fmt.Sprintf("0x%040x", i*7919+trial)
			if exact {
				var x Int
				x.SetBig(new(big.Int).Lsh(big.NewInt(r.Int64N(5)), uint(r.IntN(150))))
				shares[i].Exact = &x
			} else {
				shares[i].Float = []float64{0, 1, 0.5, 3, r.Float64() * 1e9, float64(r.IntN(4))}[r.IntN(6)]
			}
		}
		pool := new(big.Int).Lsh(big.NewInt(r.Int64N(1<<40)), uint(r.IntN(200)))
		o := AllocateOptions{}
		if r.IntN(2) == 0 {
			o.Cap = new(big.Int).Quo(pool, big.NewInt(int64(1+r.IntN(n))))
			o.Cap.Add(o.Cap, big.NewInt(int64(r.IntN(3))))
		}
		got, err := Allocate(shares, pool, o)
		elig, ex, maxFrac, err2 := eligible(shares, o.MinScore)
		if err2 != nil {
			t.Fatal(err2)
		}
		if _, ok := nums256(shares, elig, ex, maxFrac, pool, o.Cap); !ok {
			t.Fatalf("trial %d: the 256-bit path refused a small input", trial)
		}
		if err != nil {
			if !errors.Is(err, ErrInfeasibleCap) && !errors.Is(err, ErrNoneEligible) {
				t.Fatalf("trial %d: %v", trial, err)
			}
			continue
		}
		want, err := allocateBig(shares, elig, ex, maxFrac, pool, o.Cap)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("trial %d: %d awards, math/big %d", trial, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("trial %d row %d: %s to share %d, math/big %s to share %d", trial, i, &got[i].Amount,
					got[i].Share, &want[i].Amount, want[i].Share)
			}
		}
	}
}

func TestNthLargest(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 2000; trial++ {
		xs := make([]float64, 1+r.IntN(60))
		for i := range xs {
			xs[i] = float64(r.IntN(1 + trial%7*3)) // many equal values
		}
		n := 1 + r.IntN(len(xs))
		sorted := slices.Clone(xs)
		slices.Sort(sorted)
		if got, want := nthLargest(slices.Clone(xs), n), sorted[len(sorted)-n]; got != want {
			t.Fatalf("nthLargest(%v, %d) = %v, want %v", xs, n, got, want)
		}
	}
}

// TestAllocateReportsTheFirstBadShare: a repeated id and a bad score are
// reported by the lower index, whichever kind comes first.
func TestAllocateReportsTheFirstBadShare(t *testing.T) {
	mk := func(ids []string, scores []float64) []Share {
		s := make([]Share, len(ids))
		for i := range ids {
			s[i] = Share{HolderID: ids[i], Float: scores[i]}
		}
		return s
	}
	pool := big.NewInt(10)
	for _, tc := range []struct {
		shares []Share
		want   string
	}{
		{mk([]string{"a", "b", "a", "c"}, []float64{1, 1, 1, -1}), "shares[2]: holder_id \"a\" appears twice (first at shares[0])"},
		{mk([]string{"a", "b", "c", "a"}, []float64{1, -1, 1, 1}), "shares[1] (\"b\"): score -1 must be"},
		{mk([]string{"x", "a", "b", "b", "a"}, []float64{1, 1, 1, 1, 1}), "shares[3]: holder_id \"b\" appears twice (first at shares[2])"},
		{mk([]string{"a", "b", "a", "b", "a"}, []float64{1, 1, 1, 1, 1}), "shares[2]: holder_id \"a\" appears twice (first at shares[0])"},
	} {
		_, err := Allocate(tc.shares, pool, AllocateOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}
