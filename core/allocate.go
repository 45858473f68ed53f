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
	"github.com/holiman/uint256"
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

// Award is one holder's amount: shares[Share] gets Amount. It holds no
// pointer, so a million of them cost the garbage collector nothing.
type Award struct {
	Share  int // index in Allocate's input
	Amount Int
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
//
// The split runs in 256-bit integers (holiman/uint256, 512-bit products)
// when the pool, the cap and every eligible numerator fit them (numerators
// below 2^224, so their sum cannot overflow); otherwise in math/big. Both
// give the same result (TestAllocateWidePathsAgree).
func Allocate(shares []Share, pool *big.Int, o AllocateOptions) ([]Award, error) {
	if pool.Sign() < 0 {
		return nil, fmt.Errorf("pool %s must be >= 0", pool)
	}
	if pool.BitLen() > 384 {
		return nil, fmt.Errorf("pool %s does not fit 384 bits", pool)
	}
	if o.Cap != nil && o.Cap.Sign() < 0 {
		return nil, fmt.Errorf("cap %s must be >= 0", o.Cap)
	}
	if math.IsNaN(o.MinScore) || math.IsInf(o.MinScore, 0) {
		return nil, fmt.Errorf("min_score %v must be a finite number", o.MinScore)
	}
	elig, exact, maxFrac, err := eligible(shares, o.MinScore)
	if err != nil {
		return nil, err
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
	if nums, ok := nums256(shares, elig, exact, maxFrac, pool, o.Cap); ok {
		return allocate256(shares, elig, nums, pool, o.Cap)
	}
	return allocateBig(shares, elig, exact, maxFrac, pool, o.Cap)
}

// share is an eligible share: its index, and for a float score f = m × 2^e
// its mantissa m with frac = max(0, −e) (the denominator's exponent) and
// lsh = max(0, e); over the common denominator 2^maxFrac its numerator is
// m << (lsh + maxFrac − frac).
type share struct {
	i         int32
	frac, lsh int32
	m         uint64
}

// eligible validates every share and returns the eligible ones (score > 0
// and ≥ minScore), whether the scores are exact, and the largest frac.
func eligible(shares []Share, minScore float64) ([]share, bool, int32, error) {
	exact := len(shares) > 0 && shares[0].isExact()
	elig := make([]share, 0, len(shares))
	var maxFrac int32
	// The first bad share (the lowest index) is the one reported: a bad
	// value at i, unless an id below i repeats an earlier one.
	bad := func(i int, err error) error {
		if d := firstRepeat(shares[:i]); d != nil {
			return d
		}
		return err
	}
	for i := range shares {
		s := &shares[i]
		if s.isExact() != exact {
			return nil, false, 0, bad(i, fmt.Errorf("shares[%d] (%s): exact and float scores mixed", i, quoteID(s.HolderID)))
		}
		if err := ValidateID(i, "holder_id", s.HolderID); err != nil {
			return nil, false, 0, bad(i, err)
		}
		if exact {
			var zero bool
			var f float64
			if s.Big != nil {
				if s.Big.Sign() < 0 {
					return nil, false, 0, bad(i, fmt.Errorf("shares[%d] (%s): score %s must be >= 0", i, quoteID(s.HolderID), s.Big))
				}
				zero = s.Big.Sign() == 0
				if !zero && minScore > 0 {
					f = bigFloat(s.Big)
				}
			} else {
				zero = s.Exact.IsZero()
				if !zero && minScore > 0 {
					f = bigFloat(s.Exact.Big())
				}
			}
			if zero || minScore > 0 && f < minScore {
				continue
			}
			elig = append(elig, share{i: int32(i)})
			continue
		}
		f := s.Float
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return nil, false, 0, bad(i, fmt.Errorf("shares[%d] (%s): score %v must be a finite number >= 0", i, quoteID(s.HolderID), f))
		}
		if f == 0 || f < minScore {
			continue
		}
		m, e := floatParts(f)
		sh := share{i: int32(i), m: m}
		if e >= 0 {
			sh.lsh = e
		} else {
			sh.frac = -e
		}
		maxFrac = max(maxFrac, sh.frac)
		elig = append(elig, sh)
	}
	if err := firstRepeat(shares); err != nil {
		return nil, false, 0, err
	}
	return elig, exact, maxFrac, nil
}

// firstRepeat reports the lowest index i whose holder_id an earlier share
// has (and that share's index), or nil. The ids' xxhashes are radix-sorted
// with their indices, so equal ids are adjacent, in index order: sequential
// passes rather than a hash table's random probes (which a million ids make
// cache misses).
func firstRepeat(shares []Share) error {
	if len(shares) < 2 {
		return nil
	}
	keys := make([]rankKey, len(shares))
	for i := range shares {
		// The hash's top 32 bits: half the radix passes (radixSort skips
		// the zero bytes); a million ids share few, and the compare settles them.
		keys[i] = rankKey{xxhash.Sum64String(shares[i].HolderID) >> 32, int32(i)}
	}
	keys = radixSort(keys, make([]rankKey, len(keys)))
	rep, first := -1, -1
	for lo := 0; lo < len(keys); {
		hi := lo + 1
		for hi < len(keys) && keys[hi].key == keys[lo].key {
			hi++
		}
		// A run of one hash, in index order (the sort is stable): the first
		// share whose id matches an earlier one's in the run.
		for a := lo + 1; a < hi; a++ {
			i := int(keys[a].i)
			if rep >= 0 && i >= rep {
				break
			}
			for b := lo; b < a; b++ {
				if shares[keys[b].i].HolderID == shares[i].HolderID {
					rep, first = i, int(keys[b].i)
					break
				}
			}
			if rep == i {
				break
			}
		}
		lo = hi
	}
	if rep < 0 {
		return nil
	}
	return fmt.Errorf("shares[%d]: holder_id %s appears twice (first at shares[%d])", rep, quoteID(shares[rep].HolderID),
		first)
}

// bigNum is an eligible share's numerator over the common denominator.
func bigNum(shares []Share, s share, exact bool, maxFrac int32) *big.Int {
	if exact {
		if b := shares[s.i].Big; b != nil {
			return new(big.Int).Set(b)
		}
		return shares[s.i].Exact.Big()
	}
	n := new(big.Int).SetUint64(s.m)
	return n.Lsh(n, uint(s.lsh+maxFrac-s.frac))
}

// nums256 is every eligible numerator as a uint256, when the pool, the cap
// and each numerator are small enough for allocate256 (numerators < 2^224).
func nums256(shares []Share, elig []share, exact bool, maxFrac int32, pool, capB *big.Int) ([]uint256.Int, bool) {
	if pool.BitLen() > 256 || capB != nil && capB.BitLen() > 256 {
		return nil, false
	}
	const maxBits = 224
	nums := make([]uint256.Int, len(elig))
	for k, s := range elig {
		z := &nums[k]
		switch {
		case !exact:
			sh := s.lsh + maxFrac - s.frac
			if bits.Len64(s.m)+int(sh) > maxBits {
				return nil, false
			}
			z.SetUint64(s.m).Lsh(z, uint(sh))
		case shares[s.i].Big != nil:
			if shares[s.i].Big.BitLen() > maxBits {
				return nil, false
			}
			z.SetFromBig(shares[s.i].Big)
		default:
			x := shares[s.i].Exact
			if x[5] != 0 || x[4] != 0 || x[3]>>(maxBits-192) != 0 {
				return nil, false
			}
			*z = uint256.Int{x[0], x[1], x[2], x[3]}
		}
	}
	return nums, true
}

// allocate256 is the split in 256-bit integers: every quota
// ⌊remaining × num / total⌋ through a 512-bit product, its remainder exact
// modulo 2^256 (it is below total < 2^256).
func allocate256(shares []Share, elig []share, nums []uint256.Int, pool, capB *big.Int) ([]Award, error) {
	var remaining, capV uint256.Int
	remaining.SetFromBig(pool)
	if capB != nil {
		capV.SetFromBig(capB)
	}
	amount := make([]uint256.Int, len(elig))
	rest := make([]int32, len(elig)) // indices into elig not fixed at the cap
	for k := range rest {
		rest[k] = int32(k)
	}
	sumOf := func(ix []int32) (t uint256.Int) {
		for _, k := range ix {
			t.Add(&t, &nums[k])
		}
		return t
	}
	var q uint256.Int
	if capB != nil {
		// remaining × num ≥ cap × total ⟺ ⌊remaining × num / total⌋ ≥ cap.
		for len(rest) > 0 {
			t := sumOf(rest)
			kept, capped := splitCapped(rest, func(k int32) bool {
				q.MulDivOverflow(&remaining, &nums[k], &t) // ≤ remaining: no overflow
				return !q.Lt(&capV)
			})
			if len(capped) == 0 {
				break
			}
			for _, k := range capped {
				amount[k] = capV
				remaining.Sub(&remaining, &capV)
			}
			rest = kept
		}
	}
	if len(rest) > 0 {
		t := sumOf(rest)
		rem := func(j int) (r uint256.Int) {
			var qt uint256.Int
			k := rest[j]
			r.Mul(&remaining, &nums[k])
			return *r.Sub(&r, qt.Mul(&amount[k], &t))
		}
		keys := make([]float64, len(rest))
		left := remaining
		for j, k := range rest {
			amount[k].MulDivOverflow(&remaining, &nums[k], &t)
			left.Sub(&left, &amount[k])
			r := rem(j)
			keys[j] = r.Float64()
		}
		// left < len(rest): each quota's floor loses less than one unit.
		if n := int(left.Uint64()); n > 0 {
			id := func(j int) string { return shares[elig[rest[j]].i].HolderID }
			cmpRem := func(a, b uint256.Int) int { return a.Cmp(&b) }
			for _, j := range largestRemainders(keys, n, rem, cmpRem, id) {
				amount[rest[j]].AddUint64(&amount[rest[j]], 1)
			}
		}
	}
	var check uint256.Int
	for k := range amount {
		check.Add(&check, &amount[k])
	}
	if check.ToBig().Cmp(pool) != 0 {
		return nil, fmt.Errorf("internal error: the amounts sum to %s, not the pool %s", check.Dec(), pool)
	}
	order := rankAwards(len(elig), func(k int) float64 { return amount[k].Float64() },
		func(x, y int) int { return amount[x].Cmp(&amount[y]) }, shares, elig)
	// Scattered writes, sequential reads: the rank of each amount, then each
	// amount to its rank (gathering amounts in rank order stalls on reads).
	rank := make([]int32, len(order))
	for i, k := range order {
		rank[k] = int32(i)
	}
	out := make([]Award, len(order))
	for k := range amount {
		a := &amount[k]
		out[rank[k]] = Award{Share: int(elig[k].i), Amount: Int{a[0], a[1], a[2], a[3]}}
	}
	return out, nil
}

// allocateBig is the split in math/big, for any width.
func allocateBig(shares []Share, elig []share, exact bool, maxFrac int32, pool, capB *big.Int) ([]Award, error) {
	nums := make([]*big.Int, len(elig))
	for k, s := range elig {
		nums[k] = bigNum(shares, s, exact, maxFrac)
	}
	amount := make([]*big.Int, len(elig))
	remaining := new(big.Int).Set(pool)
	rest := make([]int32, len(elig)) // indices into elig not fixed at the cap
	for k := range rest {
		rest[k] = int32(k)
	}
	total := new(big.Int)
	lhs, rhs := new(big.Int), new(big.Int)
	sumOf := func(ix []int32) *big.Int {
		total.SetInt64(0)
		for _, k := range ix {
			total.Add(total, nums[k])
		}
		return total
	}
	if capB != nil {
		for len(rest) > 0 {
			t := sumOf(rest)
			capT := new(big.Int).Mul(capB, t)
			kept, capped := splitCapped(rest, func(k int32) bool { return lhs.Mul(remaining, nums[k]).Cmp(capT) >= 0 })
			if len(capped) == 0 {
				break
			}
			for _, k := range capped {
				amount[k] = new(big.Int).Set(capB)
				remaining.Sub(remaining, capB)
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
			q.QuoRem(rhs.Mul(remaining, nums[k]), t, r)
			amount[k] = q
			left.Sub(left, q)
			keys[j] = floatKey(r)
		}
		if n := int(left.Int64()); n > 0 {
			rem := func(j int) *big.Int { return new(big.Int).Rem(lhs.Mul(remaining, nums[rest[j]]), t) }
			id := func(j int) string { return shares[elig[rest[j]].i].HolderID }
			for _, j := range largestRemainders(keys, n, rem, (*big.Int).Cmp, id) {
				amount[rest[j]].Add(amount[rest[j]], big.NewInt(1))
			}
		}
	}
	check := new(big.Int)
	for k := range amount {
		check.Add(check, amount[k])
	}
	if check.Cmp(pool) != 0 {
		return nil, fmt.Errorf("internal error: the amounts sum to %s, not the pool %s", check, pool)
	}
	order := rankAwards(len(elig), func(k int) float64 { return floatKey(amount[k]) },
		func(x, y int) int { return amount[x].Cmp(amount[y]) }, shares, elig)
	out := make([]Award, len(order))
	for i, k := range order {
		out[i].Share = int(elig[k].i)
		out[i].Amount.SetBig(amount[k]) // ≤ pool < 2^384
	}
	return out, nil
}

// splitCapped partitions rest, in place and in order, into the shares whose
// quota does not reach the cap (kept) and those whose quota does (capped).
func splitCapped(rest []int32, reaches func(k int32) bool) (kept, capped []int32) {
	kept = rest[:0]
	for _, k := range rest {
		if reaches(k) {
			capped = append(capped, k)
		} else {
			kept = append(kept, k)
		}
	}
	return kept, capped
}

// rankAwards orders the eligible shares by amount descending, then holder_id
// ascending: radix-sorted on the amount's monotone float key (key), then
// each run of equal keys sorted exactly (cmpAmount, then the id).
func rankAwards(n int, key func(int) float64, cmpAmount func(x, y int) int, shares []Share, elig []share) []int32 {
	order := make([]rankKey, n)
	for k := range order {
		order[k] = rankKey{rankOf(key(k)), int32(k)}
	}
	order = radixSort(order, make([]rankKey, n))
	for lo := 0; lo < n; {
		hi := lo + 1
		for hi < n && order[hi].key == order[lo].key {
			hi++
		}
		if hi-lo > 1 {
			slices.SortFunc(order[lo:hi], func(x, y rankKey) int {
				if c := cmpAmount(int(y.i), int(x.i)); c != 0 {
					return c
				}
				return strings.Compare(shares[elig[x.i].i].HolderID, shares[elig[y.i].i].HolderID)
			})
		}
		lo = hi
	}
	out := make([]int32, n)
	for i, r := range order {
		out[i] = r.i
	}
	return out
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
func largestRemainders[R any](keys []float64, n int, rem func(int) R, cmpRem func(a, b R) int,
	id func(int) string) []int {
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	if n >= len(keys) {
		return idx
	}
	th := nthLargest(slices.Clone(keys), n)
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
		r R
	}
	ts := make([]tie, len(ties))
	for k, i := range ties {
		ts[k] = tie{i, rem(i)}
	}
	slices.SortFunc(ts, func(a, b tie) int { return cmp.Or(cmpRem(b.r, a.r), strings.Compare(id(a.i), id(b.i))) })
	for _, t := range ts[:n-len(out)] {
		out = append(out, t.i)
	}
	return out
}

// nthLargest is the n-th largest of xs (1 ≤ n ≤ len(xs), no NaN), which it
// reorders: quickselect (Hoare partition around the median of three), O(n).
func nthLargest(xs []float64, n int) float64 {
	k := len(xs) - n // the k-th smallest, from 0
	lo, hi := 0, len(xs)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		a, b, c := xs[lo], xs[mid], xs[hi]
		p := max(min(a, b), min(max(a, b), c))
		i, j := lo, hi
		for i <= j {
			for xs[i] < p {
				i++
			}
			for xs[j] > p {
				j--
			}
			if i <= j {
				xs[i], xs[j] = xs[j], xs[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return xs[k] // between j and i: equal to the pivot
		}
	}
	return xs[k]
}

// bigFloat is x's nearest float64.
func bigFloat(x *big.Int) float64 {
	f, _ := new(big.Float).SetInt(x).Float64()
	return f
}

// floatParts is f (finite, > 0) as m × 2^e exactly, m < 2^53.
func floatParts(f float64) (uint64, int32) {
	mant, exp := math.Frexp(f) // f = mant × 2^exp, mant in [0.5, 1)
	return uint64(math.Ldexp(mant, 53)), int32(exp - 53)
}
