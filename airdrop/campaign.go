package airdrop

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/holiman/uint256"
	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// Campaign is one run: the rules over the window [T0, T1) as of Now, this
// epoch's Pool, and the previous epoch (nil for the first).
type Campaign struct {
	Rules    *Rules
	Dir      string // relative exclusion files are under it (the rules file's directory)
	T0, T1   int64
	Now      int64
	Pool     *big.Int
	Previous *Epoch
}

// Epoch is a cumulative distribution: every amount is the holder's total of
// every epoch so far, and Pools the sum of their pools.
type Epoch struct {
	Index   int
	Pools   *big.Int
	Amounts map[string]*big.Int // canonical holder id → cumulative amount
}

// Row is one holder's breakdown: the base score, what each rule did, and
// the amount.
type Row struct {
	Holder string // canonical id
	addr   [20]byte
	isAddr bool
	// Status is "awarded", "excluded", "ineligible", "no score" or
	// "previous epochs" (in an earlier epoch, not in this one's holds);
	// Rule names the rule that excluded the holder or failed.
	Status, Rule string
	Score        *big.Int // Σ balance × seconds in the window, all tokens
	Weighted     *big.Int // ⌊Σ score per token × its weight⌋ (= Score without token weights)
	Held         int64    // longest unbroken positive hold in the window (seconds)
	TWAB         *big.Int // ⌊Weighted / window seconds⌋
	Transformed  *big.Int
	DurationMult Ratio
	BalanceMult  Ratio
	Weight       *big.Int // Transformed × both multipliers × 10^36 (exact)
	Capped       bool
	EpochAmount  *big.Int // of this epoch's pool
	Previous     *big.Int // the cumulative amount before this epoch
	Amount       *big.Int // Previous + EpochAmount
}

// Outcome is a run's result.
type Outcome struct {
	Rows    []Row // amount descending, then holder id ascending
	Awarded int   // rows with Amount > 0 (they come first)
	Total   *big.Int
	Epoch   Epoch
	Inputs  []InputFile    // the exclusion files read
	Removed map[string]int // rule → holders it removed
	Span    int64          // window seconds: min(T1, Now) − T0
}

// ErrRule: a rule leaves nobody, or cannot be met (the error names it).
var ErrRule = errors.New("campaign rule")

// holderFeat is what the rules look at, per holder.
type holderFeat struct {
	score    core.Int
	weighted *big.Int // scaled by 10^18, with token weights only
	held     int64
	balOK    bool
	snapOK   bool
}

// Run applies c's rules to holds (from core.Intervals) and splits the pool.
func Run(holds *core.Holds, c Campaign) (*Outcome, error) {
	r := c.Rules
	if r == nil {
		return nil, errors.New("campaign: no rules")
	}
	if c.T0 < core.MinTime || c.T1 > core.MaxTime || c.T0 >= c.T1 {
		return nil, fmt.Errorf("campaign: window [%d, %d) is empty or out of range", c.T0, c.T1)
	}
	span := min(c.T1, c.Now) - c.T0
	if span <= 0 {
		return nil, fmt.Errorf("campaign: now %d is not after the window's start %d", c.Now, c.T0)
	}
	if c.Pool == nil || c.Pool.Sign() < 0 {
		return nil, fmt.Errorf("campaign: pool %v must be an integer >= 0", c.Pool)
	}
	ex, inputs, err := r.exclusions(c.Dir)
	if err != nil {
		return nil, err
	}
	// Token weights (canonical ids), and the tokens the holds have.
	var tokW map[string]*big.Int
	if len(r.Multipliers.Tokens) > 0 {
		tokW = make(map[string]*big.Int, len(r.Multipliers.Tokens))
		for k, v := range r.Multipliers.Tokens {
			tokW[core.CanonicalID(k)] = v.Scaled
		}
	} else {
		var first string
		for i, p := range holds.Pairs {
			if i == 0 {
				first = p.Token
			} else if p.Token != first {
				return nil, fmt.Errorf("%w: multipliers.tokens: the holds have tokens %s and %s; say each token's "+
					"weight (their units differ)", ErrRule, first, p.Token)
			}
		}
	}
	e := &r.Eligibility
	minBal, minDur := uint256.NewInt(0), int64(0)
	checkBal := e.MinBalance != nil || e.MinDuration != nil
	if checkBal {
		minBal.SetOne()
		minDur = 1
		if e.MinBalance != nil {
			if minBal.SetFromBig(&e.MinBalance.Int) {
				return nil, fmt.Errorf("%w: eligibility.min_balance %s is not below 2^256", ErrRule, &e.MinBalance.Int)
			}
		}
		if e.MinDuration != nil {
			minDur = max(1, e.MinDuration.Seconds)
		}
	}
	snapMin := uint256.NewInt(1)
	if e.SnapshotMinBalance != nil && snapMin.SetFromBig(&e.SnapshotMinBalance.Int) {
		return nil, fmt.Errorf("%w: eligibility.snapshot_min_balance is not below 2^256", ErrRule)
	}

	index := make(map[string]int32, len(holds.Pairs))
	var ids []string
	var feats []holderFeat
	var (
		curPair        int32 = -1
		runEnd, run    int64
		bRunEnd, bRun  int64
		pairW          *big.Int
		pairCounted    bool
		f              *holderFeat
		term, wBig, dB = new(big.Int), new(big.Int), new(big.Int)
	)
	for i := range holds.Rows {
		row := &holds.Rows[i]
		if row.Pair != curPair {
			curPair, run, bRun, runEnd, bRunEnd = row.Pair, 0, 0, -1, -1
			p := holds.Pairs[row.Pair]
			pairW, pairCounted = nil, true
			if tokW != nil {
				if pairW, pairCounted = tokW[p.Token]; !pairCounted {
					continue
				}
			}
			h, ok := index[p.Holder]
			if !ok {
				h = int32(len(ids))
				index[p.Holder] = h
				ids = append(ids, p.Holder)
				feats = append(feats, holderFeat{})
			}
			f = &feats[h]
		}
		if !pairCounted {
			continue
		}
		if s := e.Snapshot; s != nil && row.Start <= *s && (!row.HasEnd || *s < row.End) && !row.Weight.Lt(snapMin) {
			f.snapOK = true
		}
		s, end := max(row.Start, c.T0), min(c.T1, c.Now)
		if row.HasEnd {
			end = min(end, row.End)
		}
		if end <= s {
			continue
		}
		d := end - s
		f.score.AddMul(&row.Weight, uint64(d))
		if pairW != nil {
			if f.weighted == nil {
				f.weighted = new(big.Int)
			}
			row.Weight.IntoBig(&wBig)
			term.Mul(wBig, dB.SetInt64(d))
			f.weighted.Add(f.weighted, term.Mul(term, pairW))
		}
		if !row.Weight.IsZero() {
			if runEnd != s {
				run = 0
			}
			run += d
			runEnd = end
			f.held = max(f.held, run)
		} else {
			run, runEnd = 0, -1
		}
		if checkBal && !row.Weight.Lt(minBal) {
			if bRunEnd != s {
				bRun = 0
			}
			bRun += d
			bRunEnd = end
			if bRun >= minDur {
				f.balOK = true
			}
		} else {
			bRun, bRunEnd = 0, -1
		}
	}

	// Each holder through the rules (the split does not depend on their
	// order: Allocate breaks ties by holder id).
	rows := make([]Row, 0, len(ids))
	removed := map[string]int{}
	var shares []core.Share
	var shareRow []int
	spanB := big.NewInt(span)
	for i := range ids {
		f := &feats[i]
		row := Row{Holder: ids[i], Score: f.score.Big(), DurationMult: one(), BalanceMult: one(),
			Transformed: zero, Weight: zero, EpochAmount: zero, Previous: zero}
		row.Weighted = row.Score
		if tokW != nil {
			row.Weighted = new(big.Int)
			if f.weighted != nil {
				row.Weighted.Quo(f.weighted, RatioScale)
			}
		}
		row.TWAB = new(big.Int).Quo(row.Weighted, spanB)
		row.Held = f.held
		fail := func(status, rule string) {
			row.Status, row.Rule = status, rule
			removed[rule]++
		}
		addr, isAddr := core.AddressBytes(row.Holder)
		row.addr, row.isAddr = addr, isAddr
		switch {
		case isAddr && ex[addr] != "":
			fail("excluded", ex[addr])
		case e.MinScore != nil && row.Weighted.Cmp(&e.MinScore.Int) < 0:
			fail("ineligible", "eligibility.min_score")
		case checkBal && !f.balOK:
			fail("ineligible", balanceRule(e))
		case e.Snapshot != nil && !f.snapOK:
			fail("ineligible", "eligibility.snapshot")
		case row.Weighted.Sign() == 0:
			fail("no score", "window")
		}
		if row.Status == "" {
			row.Transformed = transform(r.Transform, row.Weighted)
			for _, t := range r.Multipliers.Duration {
				if row.Held >= t.At.Seconds {
					row.DurationMult = t.Multiplier
				}
			}
			for _, t := range r.Multipliers.Balance {
				if row.TWAB.Cmp(&t.At.Int) >= 0 {
					row.BalanceMult = t.Multiplier
				}
			}
			row.Weight = new(big.Int).Mul(row.Transformed, row.DurationMult.Scaled)
			row.Weight.Mul(row.Weight, row.BalanceMult.Scaled)
			if row.Weight.Sign() == 0 {
				fail("no score", "multipliers")
			} else {
				row.Status = "awarded"
				shares = append(shares, core.Share{HolderID: row.Holder, Big: row.Weight})
				shareRow = append(shareRow, len(rows))
			}
		}
		rows = append(rows, row)
	}
	if len(shares) == 0 && c.Pool.Sign() > 0 {
		return nil, fmt.Errorf("%w: no holder is eligible: of %d holders, %s", ErrRule, len(ids), removedText(removed))
	}
	o := core.AllocateOptions{}
	if r.Cap != nil {
		o.Cap = &r.Cap.Int
	}
	awards, err := core.Allocate(shares, c.Pool, o)
	if err != nil {
		if errors.Is(err, core.ErrInfeasibleCap) {
			return nil, fmt.Errorf("%w: cap: %w", ErrRule, err)
		}
		return nil, err
	}
	for _, a := range awards {
		row := &rows[shareRow[a.Share]]
		row.EpochAmount = a.Amount.Big()
		row.Capped = o.Cap != nil && row.EpochAmount.Cmp(o.Cap) == 0
	}

	// The epoch: amounts are cumulative.
	next := Epoch{Index: 1, Pools: new(big.Int).Set(c.Pool), Amounts: make(map[string]*big.Int, len(rows))}
	if c.Previous != nil {
		next.Index = c.Previous.Index + 1
		next.Pools.Add(next.Pools, c.Previous.Pools)
		for k := range rows {
			if p := c.Previous.Amounts[rows[k].Holder]; p != nil {
				rows[k].Previous = p
			}
		}
		for h, p := range c.Previous.Amounts {
			if _, ok := index[h]; !ok {
				a, ok := core.AddressBytes(h)
				rows = append(rows, Row{Holder: h, addr: a, isAddr: ok, Status: "previous epochs", Score: zero, Weighted: zero, TWAB: zero,
					Transformed: zero, Weight: zero, DurationMult: one(), BalanceMult: one(), EpochAmount: zero,
					Previous: p})
			}
		}
	}
	total := new(big.Int)
	for k := range rows {
		rows[k].Amount = rows[k].EpochAmount
		if rows[k].Previous.Sign() != 0 {
			rows[k].Amount = new(big.Int).Add(rows[k].Previous, rows[k].EpochAmount)
		}
		if rows[k].Amount.Sign() > 0 {
			next.Amounts[rows[k].Holder] = rows[k].Amount
		}
		total.Add(total, rows[k].Amount)
	}
	if c.Previous != nil {
		if err := CheckEpoch(c.Previous, &next); err != nil {
			return nil, err
		}
	}
	rows = sortRows(rows, awards, shareRow, c.Previous == nil)
	awarded := 0
	for awarded < len(rows) && rows[awarded].Amount.Sign() > 0 {
		awarded++
	}
	return &Outcome{Rows: rows, Awarded: awarded, Total: total, Epoch: next, Inputs: inputs, Removed: removed,
		Span: span}, nil
}

// zero is the shared 0 of rows' unset amounts (never written to).
var zero = new(big.Int)

// sortRows orders rows by amount descending, then holder id. In a first
// epoch the amounts are Allocate's, already in that order, and only the rows
// without an amount are sorted (by id); otherwise everything is, by each
// amount's nearest float first (see core.Allocate).
func sortRows(rows []Row, awards []core.Award, shareRow []int, first bool) []Row {
	out := make([]Row, 0, len(rows))
	if first {
		taken := make([]bool, len(rows))
		for _, a := range awards {
			if k := shareRow[a.Share]; !a.Amount.IsZero() {
				out = append(out, rows[k])
				taken[k] = true
			}
		}
		var restIx []int
		for k := range rows {
			if !taken[k] {
				restIx = append(restIx, k)
			}
		}
		slices.SortFunc(restIx, func(a, b int) int { return strings.Compare(rows[a].Holder, rows[b].Holder) })
		for _, k := range restIx {
			out = append(out, rows[k])
		}
		return out
	}
	type key struct {
		f float64
		k int
	}
	keys := make([]key, len(rows))
	for k := range rows {
		f, _ := new(big.Float).SetInt(rows[k].Amount).Float64()
		keys[k] = key{f, k}
	}
	slices.SortFunc(keys, func(x, y key) int {
		if c := cmp.Compare(y.f, x.f); c != 0 {
			return c
		}
		return cmp.Or(rows[y.k].Amount.Cmp(rows[x.k].Amount), strings.Compare(rows[x.k].Holder, rows[y.k].Holder))
	})
	for _, k := range keys {
		out = append(out, rows[k.k])
	}
	return out
}

// CheckEpoch refuses a cumulative epoch next after prev in which a holder's
// amount is below the previous one, or whose total exceeds the pools so far.
func CheckEpoch(prev, next *Epoch) error {
	ids := make([]string, 0, len(prev.Amounts))
	for h := range prev.Amounts {
		ids = append(ids, h)
	}
	slices.Sort(ids)
	for _, h := range ids {
		p := prev.Amounts[h]
		n := next.Amounts[h]
		if n == nil {
			n = new(big.Int)
		}
		if n.Cmp(p) < 0 {
			return fmt.Errorf("%w: epoch %d: holder %s gets %s, below its %s of epoch %d (amounts are cumulative)",
				ErrRule, next.Index, h, n, p, prev.Index)
		}
	}
	for _, e := range []*Epoch{prev, next} {
		total := new(big.Int)
		for _, a := range e.Amounts {
			total.Add(total, a)
		}
		if total.Cmp(e.Pools) > 0 {
			return fmt.Errorf("%w: epoch %d: the amounts total %s, more than the pools so far (%s)", ErrRule,
				e.Index, total, e.Pools)
		}
	}
	return nil
}

func balanceRule(e *Eligibility) string {
	switch {
	case e.MinBalance != nil && e.MinDuration != nil:
		return "eligibility.min_balance+min_duration"
	case e.MinBalance != nil:
		return "eligibility.min_balance"
	}
	return "eligibility.min_duration"
}

func removedText(removed map[string]int) string {
	if len(removed) == 0 {
		return "none had a score in the window"
	}
	rules := make([]string, 0, len(removed))
	for r := range removed {
		rules = append(rules, r)
	}
	slices.Sort(rules)
	parts := make([]string, len(rules))
	for i, r := range rules {
		parts[i] = fmt.Sprintf("%s removed %d", r, removed[r])
	}
	return strings.Join(parts, ", ")
}

// transform is the rules' transform of a score.
func transform(name string, s *big.Int) *big.Int {
	switch name {
	case "sqrt":
		return new(big.Int).Sqrt(s)
	case "log2":
		return Log2Fixed(s)
	}
	return s
}

// Log2Fixed is 2^32 · log2(1 + x), x ≥ 0, in fixed point: the integer part
// is the bit length of 1 + x less one; each of the 32 fraction bits comes
// from squaring the mantissa (kept to 256 fraction bits, truncated) and
// taking a bit when it reaches 2. The truncation makes it at most 2^-200
// below the real value before the final floor, the same on every platform
// (integers only).
func Log2Fixed(x *big.Int) *big.Int {
	const prec, fracBits = 256, 32
	y := new(big.Int).Add(x, big.NewInt(1))
	n := y.BitLen() - 1
	out := big.NewInt(int64(n))
	// m = y / 2^n in [1, 2), as an integer over 2^prec.
	m := new(big.Int)
	if n <= prec {
		m.Lsh(y, uint(prec-n))
	} else {
		m.Rsh(y, uint(n-prec))
	}
	two := new(big.Int).Lsh(big.NewInt(1), prec+1)
	for i := 0; i < fracBits; i++ {
		m.Mul(m, m)
		m.Rsh(m, prec)
		out.Lsh(out, 1)
		if m.Cmp(two) >= 0 {
			m.Rsh(m, 1)
			out.SetBit(out, 0, 1)
		}
	}
	return out
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
