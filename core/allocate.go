package core

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Reward allocation: split a pool (an integer in the token's smallest unit)
// among holders in proportion to their scores, exactly. Each holder's quota
// is pool × score / total; everyone gets the floor of it, and the units left
// go one each to the largest remainders (ties: holder_id ascending), so the
// amounts sum to the pool exactly. A cap fixes holders whose quota reaches
// it at the cap and splits the rest among the others, until no quota of the
// rest reaches the cap. Float scores are exact rationals (n / 2^k), so the
// split of float scores is exact too: the same result as the Python
// fallback's Fraction arithmetic.

// Share is one holder's score for Allocate: Exact (or Big, an integer of
// any width ≥ 0) when not nil, else Float (finite, ≥ 0).
type Share struct {
	HolderID string
	Float    float64
	Exact    *Int
	Big      *big.Int
}

func (s *Share) isExact() bool { return s.Exact != nil || s.Big != nil }

// Award is one holder's amount.
type Award struct {
	HolderID string
	Share    int // index in Allocate's input
	Amount   *big.Int
}

// AllocateOptions: the zero value splits the whole pool among every holder
// with a positive score.
type AllocateOptions struct {
	// MinScore leaves out holders scoring below it (float comparison of
	// the score; exact scores compare as their nearest float).
	MinScore float64
	// Cap, when not nil, bounds any one amount.
	Cap *big.Int
}

// ErrInfeasibleCap: cap × eligible holders is below the pool.
var ErrInfeasibleCap = errors.New("cap cannot fit the pool")

// ErrNoneEligible: a non-zero pool and no holder to give it to.
var ErrNoneEligible = errors.New("no holder is eligible")

// Allocate splits pool among shares; the result is sorted by amount
// descending, then holder_id ascending, and leaves out holders that get
// nothing because they are not eligible (score 0 or below MinScore).
func Allocate(shares []Share, pool *big.Int, o AllocateOptions) ([]Award, error) {
	if pool.Sign() < 0 {
		return nil, fmt.Errorf("pool %s must be >= 0", pool)
	}
	if o.Cap != nil && o.Cap.Sign() < 0 {
		return nil, fmt.Errorf("cap %s must be >= 0", o.Cap)
	}
	if math.IsNaN(o.MinScore) || math.IsInf(o.MinScore, 0) {
		return nil, fmt.Errorf("min_score %v must be a finite number", o.MinScore)
	}
	// Numerators over one common denominator: exact scores are integers;
	// a float score n / 2^k is scaled to the largest k of all of them.
	exact := len(shares) > 0 && shares[0].isExact()
	seen := newIDSet(len(shares))
	type entry struct {
		i    int
		num  *big.Int
		frac int // float: binary exponent of the denominator
	}
	var elig []entry
	maxFrac := 0
	for i := range shares {
		s := &shares[i]
		if s.isExact() != exact {
			return nil, fmt.Errorf("shares[%d] (%s): exact and float scores mixed", i, quoteID(s.HolderID))
		}
		if err := ValidateID(i, "holder_id", s.HolderID); err != nil {
			return nil, err
		}
		if j := seen.add(shares, i); j >= 0 {
			return nil, fmt.Errorf("shares[%d]: holder_id %s appears twice (first at shares[%d])", i,
				quoteID(s.HolderID), j)
		}
		var num *big.Int
		frac := 0
		f := s.Float
		if exact {
			if s.Big != nil {
				if s.Big.Sign() < 0 {
					return nil, fmt.Errorf("shares[%d] (%s): score %s must be >= 0", i, quoteID(s.HolderID), s.Big)
				}
				num = new(big.Int).Set(s.Big)
			} else {
				num = s.Exact.Big()
			}
			if num.Sign() == 0 || o.MinScore > 0 && bigFloat(num) < o.MinScore {
				continue
			}
		} else {
			if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
				return nil, fmt.Errorf("shares[%d] (%s): score %v must be a finite number >= 0", i, quoteID(s.HolderID), f)
			}
			if f == 0 || f < o.MinScore {
				continue
			}
			num, frac = floatRatio(f)
			maxFrac = max(maxFrac, frac)
		}
		elig = append(elig, entry{i, num, frac})
	}
	if len(elig) == 0 {
		if pool.Sign() == 0 {
			return []Award{}, nil
		}
		return nil, fmt.Errorf("%w (scores > 0 and >= min_score %v): cannot distribute a pool of %s",
			ErrNoneEligible, o.MinScore, pool)
	}
	if o.Cap != nil {
		if need := new(big.Int).Mul(o.Cap, big.NewInt(int64(len(elig)))); need.Cmp(pool) < 0 {
			return nil, fmt.Errorf("%w: cap %s x %d eligible holders = %s is less than the pool %s",
				ErrInfeasibleCap, o.Cap, len(elig), need, pool)
		}
	}
	if !exact {
		for k := range elig {
			elig[k].num.Lsh(elig[k].num, uint(maxFrac-elig[k].frac))
		}
	}
	amount := make([]*big.Int, len(elig))
	remaining := new(big.Int).Set(pool)
	rest := make([]int, len(elig)) // indices into elig not fixed at the cap
	for k := range rest {
		rest[k] = k
	}
	total := new(big.Int)
	lhs, rhs := new(big.Int), new(big.Int)
	sumOf := func(ix []int) *big.Int {
		total.SetInt64(0)
		for _, k := range ix {
			total.Add(total, elig[k].num)
		}
		return total
	}
	if o.Cap != nil {
		for len(rest) > 0 {
			t := sumOf(rest)
			capT := new(big.Int).Mul(o.Cap, t)
			kept := rest[:0]
			var capped []int
			for _, k := range rest {
				if lhs.Mul(remaining, elig[k].num).Cmp(capT) >= 0 {
					capped = append(capped, k)
				} else {
					kept = append(kept, k)
				}
			}
			if len(capped) == 0 {
				break
			}
			for _, k := range capped {
				amount[k] = new(big.Int).Set(o.Cap)
				remaining.Sub(remaining, o.Cap)
			}
			rest = kept
		}
	}
	if len(rest) > 0 {
		t := new(big.Int).Set(sumOf(rest))
		// Each quota's floor, and its remainder's monotone float key
		// (floatKey): the units left go to the largest remainders, found
		// by selecting on the key and settling only the boundary's ties
		// exactly (a larger key means a larger remainder).
		keys := make([]float64, len(rest))
		left := new(big.Int).Set(remaining)
		r := new(big.Int)
		for j, k := range rest {
			q := new(big.Int)
			q.QuoRem(rhs.Mul(remaining, elig[k].num), t, r)
			amount[k] = q
			left.Sub(left, q)
			keys[j] = floatKey(r)
		}
		if n := int(left.Int64()); n > 0 {
			rem := func(j int) *big.Int { return new(big.Int).Rem(lhs.Mul(remaining, elig[rest[j]].num), t) }
			id := func(j int) string { return shares[elig[rest[j]].i].HolderID }
			for _, j := range largestRemainders(keys, n, rem, id) {
				amount[rest[j]].Add(amount[rest[j]], big.NewInt(1))
			}
		}
	}
	// Amount descending, then holder_id: sorted as (key, index) pairs,
	// exact compares only where the keys tie.
	type ranked struct {
		f float64
		k int32
	}
	order := make([]ranked, len(elig))
	check := new(big.Int)
	for k := range elig {
		order[k] = ranked{floatKey(amount[k]), int32(k)}
		check.Add(check, amount[k])
	}
	if check.Cmp(pool) != 0 {
		return nil, fmt.Errorf("internal error: the amounts sum to %s, not the pool %s", check, pool)
	}
	slices.SortFunc(order, func(x, y ranked) int {
		if c := cmp.Compare(y.f, x.f); c != 0 {
			return c
		}
		return cmp.Or(amount[y.k].Cmp(amount[x.k]), strings.Compare(shares[elig[x.k].i].HolderID,
			shares[elig[y.k].i].HolderID))
	})
	out := make([]Award, len(order))
	for i, o := range order {
		e := elig[o.k]
		out[i] = Award{HolderID: shares[e.i].HolderID, Share: e.i, Amount: amount[o.k]}
	}
	return out, nil
}

// floatKey maps x ≥ 0 to a float64 monotonically (x < y ⇒ key(x) ≤ key(y)):
// its top 64 bits, truncated, scaled back. Cheaper than the nearest float,
// and all an ordering needs (equal keys are settled exactly).
func floatKey(x *big.Int) float64 {
	n := x.BitLen()
	if n <= 64 {
		return float64(x.Uint64())
	}
	w := x.Bits() // little-endian words
	const W = bits.UintSize
	shift := n - 64
	var top uint64
	if W == 64 {
		i, off := shift/64, uint(shift%64)
		top = uint64(w[i]) >> off
		if off > 0 && i+1 < len(w) {
			top |= uint64(w[i+1]) << (64 - off)
		}
	} else {
		top = new(big.Int).Rsh(x, uint(shift)).Uint64()
	}
	return math.Ldexp(float64(top), shift)
}

// largestRemainders returns the indices of the n largest remainders (0 < n
// ≤ len(keys)), keys[i] being remainder i's floatKey: the keys above the
// n-th largest are in; those equal to it are ordered by their exact
// remainder rem(i) (computed once each), then id(i) ascending.
func largestRemainders(keys []float64, n int, rem func(int) *big.Int, id func(int) string) []int {
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	if n >= len(keys) {
		return idx
	}
	// The n-th largest key: sort a copy of the keys (floats sort fast).
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	th := sorted[len(sorted)-n]
	out := make([]int, 0, n)
	var ties []int
	for i, f := range keys {
		switch {
		case f > th:
			out = append(out, i)
		case f == th:
			ties = append(ties, i)
		}
	}
	type tie struct {
		i int
		r *big.Int
	}
	ts := make([]tie, len(ties))
	for k, i := range ties {
		ts[k] = tie{i, rem(i)}
	}
	slices.SortFunc(ts, func(a, b tie) int { return cmp.Or(b.r.Cmp(a.r), strings.Compare(id(a.i), id(b.i))) })
	for _, t := range ts[:n-len(out)] {
		out = append(out, t.i)
	}
	return out
}

// idSet finds a repeated holder id: open addressing on the ids' xxhash, one
// slot (hash, index) per probe.
type idSet struct {
	slots []idSlot
	mask  uint64
}

type idSlot struct {
	hash uint64
	i    int32 // share index + 1; 0 empty
}

func newIDSet(n int) *idSet {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	return &idSet{slots: make([]idSlot, size), mask: uint64(size - 1)}
}

// add records shares[i]'s id; it returns the index of an earlier share with
// the same id, or -1.
func (s *idSet) add(shares []Share, i int) int {
	h := xxhash.Sum64String(shares[i].HolderID)
	for p := h & s.mask; ; p = (p + 1) & s.mask {
		sl := &s.slots[p]
		if sl.i == 0 {
			*sl = idSlot{h, int32(i + 1)}
			return -1
		}
		if sl.hash == h && shares[sl.i-1].HolderID == shares[i].HolderID {
			return int(sl.i - 1)
		}
	}
}

// bigFloat is x's nearest float64.
func bigFloat(x *big.Int) float64 {
	f, _ := new(big.Float).SetInt(x).Float64()
	return f
}

// floatRatio is f (finite, > 0) as num / 2^frac exactly.
func floatRatio(f float64) (*big.Int, int) {
	mant, exp := math.Frexp(f) // f = mant × 2^exp, mant in [0.5, 1)
	m := int64(math.Ldexp(mant, 53))
	exp -= 53 // f = m × 2^exp
	num := big.NewInt(m)
	if exp >= 0 {
		return num.Lsh(num, uint(exp)), 0
	}
	return num, -exp
}
