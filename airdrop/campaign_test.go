package airdrop

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/holiman/uint256"
	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// A small world on a short timeline, so the reference below can walk it one
// second at a time.
const (
	refT0, refT1, refNow = 10, 110, 100
)

type world struct {
	holds   *core.Holds
	holders []string
	tokens  []string
}

func addr(i int) string { return fmt.Sprintf("0x%040x", 0xa0000+i) }

// randomWorld: up to 8 holders of one or two tokens, each pair a run of
// contiguous or gapped balances (sometimes zero, sometimes still open).
func randomWorld(r *rand.Rand, tokens int) world {
	w := world{holds: &core.Holds{}}
	for t := 0; t < tokens; t++ {
		w.tokens = append(w.tokens, fmt.Sprintf("0x%040x", 0x70000+t))
	}
	n := 2 + r.IntN(7)
	for h := 0; h < n; h++ {
		w.holders = append(w.holders, addr(h))
	}
	if r.IntN(3) == 0 {
		w.holders[0] = BurnAddresses[1]
	}
	for _, tok := range w.tokens {
		for _, h := range w.holders {
			if r.IntN(5) == 0 {
				continue
			}
			p := int32(len(w.holds.Pairs))
			w.holds.Pairs = append(w.holds.Pairs, core.Pair{Token: tok, Holder: h})
			t := int64(r.IntN(60))
			for k := 0; k < 1+r.IntN(4); k++ {
				d := int64(1 + r.IntN(50))
				row := core.HoldRow{Pair: p, Start: t, End: t + d, HasEnd: true}
				row.Weight.SetUint64(uint64(r.IntN(4)) * uint64(r.IntN(1000)))
				if k == 3 || r.IntN(6) == 0 {
					row.HasEnd, row.End = false, 0
					w.holds.Rows = append(w.holds.Rows, row)
					break
				}
				w.holds.Rows = append(w.holds.Rows, row)
				t += d
				if r.IntN(3) == 0 {
					t += int64(1 + r.IntN(5)) // a gap
				}
			}
		}
	}
	return w
}

// balanceAt is the pair's balance during second t (t to t+1).
func balanceAt(h *core.Holds, pair int32, t int64) int64 {
	var b int64
	for _, row := range h.Rows {
		if row.Pair == pair && row.Start <= t && (!row.HasEnd || t < row.End) {
			b += int64(row.Weight.Uint64())
		}
	}
	return b
}

// reference computes the amounts the rules give, the slow and obvious way:
// second by second balances, rationals for the split.
func reference(w world, rules *Rules, pool *big.Int) (map[string]*big.Int, map[string]string, error) {
	ex := map[string]string{}
	if rules.Exclude.Burn == nil || *rules.Exclude.Burn {
		for _, a := range BurnAddresses {
			ex[a] = "exclude.burn"
		}
	}
	for _, a := range rules.Exclude.Addresses {
		if ex[strings.ToLower(a)] == "" {
			ex[strings.ToLower(a)] = "exclude.addresses"
		}
	}
	tokW := map[string]*big.Rat{}
	for _, tok := range w.tokens {
		tokW[tok] = big.NewRat(1, 1)
	}
	if len(rules.Multipliers.Tokens) > 0 {
		tokW = map[string]*big.Rat{}
		for k, v := range rules.Multipliers.Tokens {
			tokW[strings.ToLower(k)] = new(big.Rat).SetFrac(v.Scaled, RatioScale)
		}
	}
	e := rules.Eligibility
	weights := map[string]*big.Rat{}
	status := map[string]string{}
	var holders []string
	for _, h := range w.holders {
		seen := false
		score, weighted := new(big.Int), new(big.Rat)
		var held, balRun int64
		balOK, snapOK := false, false
		for p, pair := range w.holds.Pairs {
			if pair.Holder != h || tokW[pair.Token] == nil {
				continue
			}
			seen = true
			run, brun := int64(0), int64(0)
			for t := int64(refT0); t < min(refT1, refNow); t++ {
				b := balanceAt(w.holds, int32(p), t)
				score.Add(score, big.NewInt(b))
				weighted.Add(weighted, new(big.Rat).Mul(tokW[pair.Token], new(big.Rat).SetInt64(b)))
				if b > 0 {
					run++
				} else {
					run = 0
				}
				held = max(held, run)
				minB := int64(1)
				if e.MinBalance != nil {
					minB = e.MinBalance.Int64()
				}
				if b >= minB {
					brun++
				} else {
					brun = 0
				}
				balRun = max(balRun, brun)
			}
			if e.Snapshot != nil {
				minS := int64(1)
				if e.SnapshotMinBalance != nil {
					minS = e.SnapshotMinBalance.Int64()
				}
				if balanceAt(w.holds, int32(p), *e.Snapshot) >= minS {
					snapOK = true
				}
			}
		}
		if !seen {
			continue
		}
		holders = append(holders, h)
		minD := int64(1)
		if e.MinDuration != nil {
			minD = max(1, e.MinDuration.Seconds)
		}
		balOK = balRun >= minD
		wf := new(big.Int).Quo(weighted.Num(), weighted.Denom()) // floor (weighted >= 0)
		switch {
		case ex[h] != "":
			status[h] = ex[h]
			continue
		case e.MinScore != nil && wf.Cmp(&e.MinScore.Int) < 0:
			status[h] = "eligibility.min_score"
			continue
		case (e.MinBalance != nil || e.MinDuration != nil) && !balOK:
			status[h] = "balance"
			continue
		case e.Snapshot != nil && !snapOK:
			status[h] = "eligibility.snapshot"
			continue
		case wf.Sign() == 0:
			status[h] = "window"
			continue
		}
		x := new(big.Int).Set(wf)
		if rules.Transform == "sqrt" {
			x.Sqrt(x)
		}
		m := new(big.Rat).SetInt(x)
		dm, bm := big.NewRat(1, 1), big.NewRat(1, 1)
		for _, t := range rules.Multipliers.Duration {
			if held >= t.At.Seconds {
				dm.SetFrac(t.Multiplier.Scaled, RatioScale)
			}
		}
		twab := new(big.Int).Quo(wf, big.NewInt(min(refT1, refNow)-refT0))
		for _, t := range rules.Multipliers.Balance {
			if twab.Cmp(&t.At.Int) >= 0 {
				bm.SetFrac(t.Multiplier.Scaled, RatioScale)
			}
		}
		m.Mul(m, dm).Mul(m, bm)
		if m.Sign() == 0 {
			status[h] = "multipliers"
			continue
		}
		weights[h] = m
		status[h] = "awarded"
	}
	if len(weights) == 0 {
		if pool.Sign() > 0 {
			return nil, status, ErrRule
		}
		return map[string]*big.Int{}, status, nil
	}
	// Water-filling at the cap, then largest remainder (ties: holder id).
	amounts := map[string]*big.Int{}
	remaining := new(big.Int).Set(pool)
	var rest []string
	for h := range weights {
		rest = append(rest, h)
	}
	sort.Strings(rest)
	if rules.Cap != nil {
		if new(big.Int).Mul(&rules.Cap.Int, big.NewInt(int64(len(rest)))).Cmp(pool) < 0 {
			return nil, status, ErrRule
		}
		for {
			sum := new(big.Rat)
			for _, h := range rest {
				sum.Add(sum, weights[h])
			}
			var kept []string
			capped := false
			for _, h := range rest {
				q := new(big.Rat).Mul(new(big.Rat).SetInt(remaining), weights[h])
				q.Quo(q, sum)
				if q.Cmp(new(big.Rat).SetInt(&rules.Cap.Int)) >= 0 {
					amounts[h] = new(big.Int).Set(&rules.Cap.Int)
					capped = true
				} else {
					kept = append(kept, h)
				}
			}
			for _, h := range rest {
				if !slices.Contains(kept, h) {
					remaining.Sub(remaining, &rules.Cap.Int)
				}
			}
			rest = kept
			if !capped || len(rest) == 0 {
				break
			}
		}
	}
	if len(rest) > 0 {
		sum := new(big.Rat)
		for _, h := range rest {
			sum.Add(sum, weights[h])
		}
		type fr struct {
			h string
			f *big.Rat
		}
		var fracs []fr
		left := new(big.Int).Set(remaining)
		for _, h := range rest {
			q := new(big.Rat).Mul(new(big.Rat).SetInt(remaining), weights[h])
			q.Quo(q, sum)
			fl := new(big.Int).Quo(q.Num(), q.Denom())
			amounts[h] = fl
			left.Sub(left, fl)
			fracs = append(fracs, fr{h, new(big.Rat).Sub(q, new(big.Rat).SetInt(fl))})
		}
		sort.SliceStable(fracs, func(i, j int) bool { return fracs[i].f.Cmp(fracs[j].f) > 0 })
		for k := 0; k < int(left.Int64()); k++ {
			amounts[fracs[k].h].Add(amounts[fracs[k].h], big.NewInt(1))
		}
	}
	for h, a := range amounts {
		if a.Sign() == 0 {
			delete(amounts, h)
		}
	}
	return amounts, status, nil
}

func rulesOf(t testing.TB, js string) *Rules {
	t.Helper()
	r, err := ParseRules([]byte(js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return r
}

// Each rule alone, then combined, on random worlds, against the reference.
func TestCampaignMatchesReference(t *testing.T) {
	ruleSets := []string{
		`{}`,
		`{"exclude": {"burn": false}}`,
		`{"exclude": {"addresses": ["0x00000000000000000000000000000000000A0001"]}}`,
		`{"eligibility": {"min_score": 5000}}`,
		`{"eligibility": {"min_balance": "500"}}`,
		`{"eligibility": {"min_duration": 30}}`,
		`{"eligibility": {"min_balance": 300, "min_duration": "20s"}}`,
		`{"eligibility": {"snapshot": 50}}`,
		`{"eligibility": {"snapshot": 50, "snapshot_min_balance": "400"}}`,
		`{"transform": "sqrt"}`,
		`{"multipliers": {"duration": [{"at": 20, "multiplier": "1.5"}, {"at": "1m", "multiplier": 2.25}]}}`,
		`{"multipliers": {"balance": [{"at": 100, "multiplier": "1.1"}, {"at": 400, "multiplier": "3"}]}}`,
		`{"cap": 400}`,
		`{"cap": "250", "transform": "sqrt", "eligibility": {"min_balance": 100, "min_duration": 10},
		  "multipliers": {"duration": [{"at": 30, "multiplier": "1.5"}], "balance": [{"at": 200, "multiplier": "0.5"}]},
		  "exclude": {"addresses": ["0x00000000000000000000000000000000000a0002"]}}`,
	}
	r := rand.New(rand.NewPCG(11, 12))
	for i, js := range ruleSets {
		rules := rulesOf(t, js)
		for trial := 0; trial < 40; trial++ {
			w := randomWorld(r, 1)
			pool := big.NewInt(int64(r.IntN(5000)))
			checkAgainstReference(t, fmt.Sprintf("rules %d trial %d", i, trial), w, rules, pool)
		}
	}
	// Two tokens with per-token weights.
	rules := rulesOf(t, `{"multipliers": {"tokens": {"0x0000000000000000000000000000000000070000": "1",
		"0x0000000000000000000000000000000000070001": "0.333333333333333333"}}, "eligibility": {"min_duration": 5}}`)
	for trial := 0; trial < 40; trial++ {
		checkAgainstReference(t, fmt.Sprintf("tokens trial %d", trial), randomWorld(r, 2), rules,
			big.NewInt(int64(r.IntN(100000))))
	}
}

func checkAgainstReference(t *testing.T, name string, w world, rules *Rules, pool *big.Int) {
	t.Helper()
	want, _, refErr := reference(w, rules, pool)
	out, err := Run(w.holds, Campaign{Rules: rules, T0: refT0, T1: refT1, Now: refNow, Pool: pool})
	if refErr != nil || err != nil {
		if refErr == nil || err == nil || !errors.Is(err, ErrRule) {
			t.Fatalf("%s: error %v, reference %v", name, err, refErr)
		}
		return
	}
	got := map[string]*big.Int{}
	sum := new(big.Int)
	for _, row := range out.Rows[:out.Awarded] {
		got[row.Holder] = row.Amount
		sum.Add(sum, row.Amount)
	}
	if sum.Cmp(pool) != 0 || out.Total.Cmp(pool) != 0 {
		t.Fatalf("%s: amounts sum to %s (total %s), pool %s", name, sum, out.Total, pool)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d awarded, reference %d\n got %v\nwant %v", name, len(got), len(want), got, want)
	}
	for h, a := range want {
		if got[h] == nil || got[h].Cmp(a) != 0 {
			t.Fatalf("%s: %s gets %v, reference %s\n got %v\nwant %v", name, h, got[h], a, got, want)
		}
	}
}

func TestCampaignBreakdownAndErrors(t *testing.T) {
	h := &core.Holds{Pairs: []core.Pair{{Token: "tok", Holder: addr(1)}, {Token: "tok", Holder: addr(2)}, {Token: "tok", Holder: BurnAddresses[0]}}}
	add := func(p int32, s, e int64, w uint64) {
		row := core.HoldRow{Pair: p, Start: s, End: e, HasEnd: e > 0}
		row.Weight.SetUint64(w)
		h.Rows = append(h.Rows, row)
	}
	add(0, 0, 0, 100) // 100 for the whole window (90 s to now)
	add(1, 10, 40, 50)
	add(1, 40, 0, 10)
	add(2, 0, 0, 1000)
	rules := rulesOf(t, `{"multipliers": {"duration": [{"at": "60s", "multiplier": "2"}]}, "eligibility": {"min_score": 1000}}`)
	out, err := Run(h, Campaign{Rules: rules, T0: 10, T1: 110, Now: 100, Pool: big.NewInt(1000)})
	if err != nil {
		t.Fatal(err)
	}
	byHolder := map[string]Row{}
	for _, r := range out.Rows {
		byHolder[r.Holder] = r
	}
	a1, a2, burn := byHolder[addr(1)], byHolder[addr(2)], byHolder[BurnAddresses[0]]
	// addr1: 100 × 90 s = 9000, held 90 s → ×2 = 18000; addr2: 50 × 30 + 10 × 60 = 2100, held 90 → ×2 = 4200.
	if a1.Score.Int64() != 9000 || a1.Held != 90 || a1.DurationMult.Text != "2" || a1.TWAB.Int64() != 100 {
		t.Fatalf("addr1 breakdown %+v", a1)
	}
	if a2.Score.Int64() != 2100 || a2.Held != 90 {
		t.Fatalf("addr2 breakdown %+v", a2)
	}
	// 1000 × 18000 / 22200 = 810.81 → 811; 1000 × 4200 / 22200 = 189.19 → 189.
	if a1.Amount.Int64() != 811 || a2.Amount.Int64() != 189 || out.Awarded != 2 {
		t.Fatalf("amounts %s %s (awarded %d)", a1.Amount, a2.Amount, out.Awarded)
	}
	if burn.Status != "excluded" || burn.Rule != "exclude.burn" || burn.Amount.Sign() != 0 {
		t.Fatalf("burn row %+v", burn)
	}
	// A rule that leaves nobody names what removed whom.
	_, err = Run(h, Campaign{Rules: rulesOf(t, `{"eligibility": {"min_score": "100000"}}`), T0: 10, T1: 110, Now: 100,
		Pool: big.NewInt(5)})
	if !errors.Is(err, ErrRule) || !strings.Contains(err.Error(), "eligibility.min_score removed 2") ||
		!strings.Contains(err.Error(), "exclude.burn removed 1") {
		t.Fatalf("nobody eligible: %v", err)
	}
	// A cap that cannot fit the pool names the cap.
	_, err = Run(h, Campaign{Rules: rulesOf(t, `{"cap": 10}`), T0: 10, T1: 110, Now: 100, Pool: big.NewInt(100)})
	if !errors.Is(err, ErrRule) || !strings.Contains(err.Error(), "cap") {
		t.Fatalf("cap: %v", err)
	}
	// Two tokens without weights is an error; a holder that is not an
	// address has no leaf.
	h2 := &core.Holds{Pairs: []core.Pair{{Token: "a", Holder: addr(1)}, {Token: "b", Holder: addr(1)}}, Rows: h.Rows[:2]}
	h2.Rows[1].Pair = 1
	if _, err := Run(h2, Campaign{Rules: rulesOf(t, `{}`), T0: 10, T1: 110, Now: 100, Pool: big.NewInt(1)}); err == nil ||
		!strings.Contains(err.Error(), "multipliers.tokens") {
		t.Fatalf("two tokens: %v", err)
	}
	h3 := &core.Holds{Pairs: []core.Pair{{Token: "tok", Holder: "alice"}}, Rows: h.Rows[:1]}
	out3, err := Run(h3, Campaign{Rules: rulesOf(t, `{}`), T0: 10, T1: 110, Now: 100, Pool: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteOutputs(t.TempDir(), out3, rulesOf(t, `{}`), 0); err == nil || !strings.Contains(err.Error(), `"alice"`) {
		t.Fatalf("non-address holder in a tree: %v", err)
	}
}

func TestRulesRefusals(t *testing.T) {
	for js, want := range map[string]string{
		`{"eligibilty": {}}`:                      `unknown field "eligibilty"`,
		`{"eligibility": {"min_score": -1}}`:      `-1`,
		`{"eligibility": {"min_score": 1.5}}`:     `1.5`,
		`{"eligibility": {"min_duration": "3y"}}`: `3y`,
		`{"transform": "cube"}`:                   `transform "cube"`,
		`{"multipliers": {"duration": [{"at": 5, "multiplier": "2"}, {"at": 5, "multiplier": "3"}]}}`: `multipliers.duration[1]`,
		`{"multipliers": {"balance": [{"at": 5, "multiplier": "-2"}]}}`:                               `-2`,
		`{"multipliers": {"balance": [{"at": 5, "multiplier": "0.0000000000000000001"}]}}`:            `at most 18 places`,
		`{"merkle": {"leaf": ["address"]}}`:                                                           `needs address and amount`,
		`{"merkle": {"leaf": ["address", "amount", "chain_id"]}}`:                                     `merkle.chain_id`,
		`{"merkle": {"formats": ["simple"]}}`:                                                         `"simple"`,
		`{"eligibility": {"snapshot_min_balance": 5}}`:                                                `needs eligibility.snapshot`,
		`{"exclude": {"addresses": ["alice"]}}`:                                                       ``,
	} {
		r, err := ParseRules([]byte(js))
		if want == "" { // parses; the address is refused when the campaign runs
			if err != nil {
				t.Fatalf("%s: %v", js, err)
			}
			_, err = Run(&core.Holds{}, Campaign{Rules: r, T0: 0, T1: 10, Now: 10, Pool: big.NewInt(0)})
			want = `exclude.addresses: [0]: "alice" is not an address`
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", js, err, want)
		}
	}
	// Exclusion files name the file and line of a bad entry.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ex.txt"), []byte("# team wallets\n0x00000000000000000000000000000000000a0001\n\n0x12\n"), 0o644)
	_, err := Run(&core.Holds{}, Campaign{Rules: rulesOf(t, `{"exclude": {"files": ["ex.txt"]}}`), Dir: dir, T0: 0, T1: 10,
		Now: 10, Pool: big.NewInt(0)})
	if err == nil || !strings.Contains(err.Error(), "ex.txt:4") {
		t.Fatalf("bad exclusion file line: %v", err)
	}
}

func TestExclusionFilesAndContracts(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "team.txt"), []byte("# team\n0x00000000000000000000000000000000000A0001  # cold wallet\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "contracts.txt"), []byte("0x00000000000000000000000000000000000a0002\n"), 0o644)
	h := &core.Holds{}
	for i := 1; i <= 4; i++ {
		h.Pairs = append(h.Pairs, core.Pair{Token: "tok", Holder: addr(i)})
		row := core.HoldRow{Pair: int32(i - 1), Start: 0}
		row.Weight.SetUint64(uint64(i))
		h.Rows = append(h.Rows, row)
	}
	rules := rulesOf(t, `{"exclude": {"files": ["team.txt"], "contract_files": ["contracts.txt"],
		"contracts": ["0x00000000000000000000000000000000000A0003"]}}`)
	out, err := Run(h, Campaign{Rules: rules, Dir: dir, T0: 0, T1: 10, Now: 10, Pool: big.NewInt(7)})
	if err != nil {
		t.Fatal(err)
	}
	rule := map[string]string{}
	for _, r := range out.Rows {
		rule[r.Holder] = r.Rule
	}
	if rule[addr(1)] != "exclude.files" || rule[addr(2)] != "exclude.contract_files" || rule[addr(3)] != "exclude.contracts" ||
		out.Awarded != 1 || out.Rows[0].Holder != addr(4) || out.Rows[0].Amount.Int64() != 7 {
		t.Fatalf("rules %v, awarded %d", rule, out.Awarded)
	}
	if len(out.Inputs) != 2 || len(out.Inputs[0].SHA256) != 64 {
		t.Fatalf("inputs %+v", out.Inputs)
	}
}

func TestEpochs(t *testing.T) {
	h := &core.Holds{Pairs: []core.Pair{{Token: "tok", Holder: addr(1)}, {Token: "tok", Holder: addr(2)}}}
	for p := int32(0); p < 2; p++ {
		row := core.HoldRow{Pair: p, Start: 0}
		row.Weight.SetUint64(uint64(p + 1))
		h.Rows = append(h.Rows, row)
	}
	rules := rulesOf(t, `{}`)
	e1, err := Run(h, Campaign{Rules: rules, T0: 0, T1: 10, Now: 10, Pool: big.NewInt(300)})
	if err != nil {
		t.Fatal(err)
	}
	prev := e1.Epoch
	prev.Amounts[addr(9)] = big.NewInt(0) // a holder of an earlier epoch with nothing: kept out below
	delete(prev.Amounts, addr(9))
	prev.Amounts[addr(3)] = big.NewInt(0).SetInt64(0)
	delete(prev.Amounts, addr(3))
	// Epoch 2: 300 more; addr(1) had 100 and gets 100 more, addr(2) 200 + 200.
	e2, err := Run(h, Campaign{Rules: rules, T0: 10, T1: 20, Now: 20, Pool: big.NewInt(300), Previous: &prev})
	if err != nil {
		t.Fatal(err)
	}
	if e2.Epoch.Index != 2 || e2.Epoch.Pools.Int64() != 600 || e2.Total.Int64() != 600 ||
		e2.Epoch.Amounts[addr(1)].Int64() != 200 || e2.Epoch.Amounts[addr(2)].Int64() != 400 {
		t.Fatalf("epoch 2: %+v", e2.Epoch)
	}
	// A holder of epoch 1 who holds nothing in epoch 2 keeps its amount.
	gone := Epoch{Index: 1, Pools: big.NewInt(400), Amounts: map[string]*big.Int{addr(1): big.NewInt(100),
		addr(2): big.NewInt(200), addr(5): big.NewInt(100)}}
	e3, err := Run(h, Campaign{Rules: rules, T0: 10, T1: 20, Now: 20, Pool: big.NewInt(3), Previous: &gone})
	if err != nil {
		t.Fatal(err)
	}
	if e3.Epoch.Amounts[addr(5)].Int64() != 100 || e3.Total.Int64() != 403 {
		t.Fatalf("epoch with a holder gone: %+v", e3.Epoch)
	}
	// Refused: a previous epoch paying out more than its pools; a next
	// epoch below the previous for a holder.
	over := Epoch{Index: 1, Pools: big.NewInt(10), Amounts: map[string]*big.Int{addr(1): big.NewInt(11)}}
	if _, err := Run(h, Campaign{Rules: rules, T0: 10, T1: 20, Now: 20, Pool: big.NewInt(3), Previous: &over}); !errors.Is(err, ErrRule) ||
		!strings.Contains(err.Error(), "more than the pools so far") {
		t.Fatalf("over the pools: %v", err)
	}
	down := Epoch{Index: 2, Pools: big.NewInt(20), Amounts: map[string]*big.Int{addr(1): big.NewInt(5)}}
	if err := CheckEpoch(&over, &down); !errors.Is(err, ErrRule) || !strings.Contains(err.Error(), addr(1)) ||
		!strings.Contains(err.Error(), "below") {
		t.Fatalf("below the previous: %v", err)
	}
}

func TestLog2Fixed(t *testing.T) {
	for _, x := range []int64{0, 1, 2, 3, 7, 100, 12345, 1 << 40, math.MaxInt64} {
		got := Log2Fixed(big.NewInt(x))
		f, _ := new(big.Float).SetInt(got).Float64()
		want := math.Log2(1+float64(x)) * (1 << 32)
		if math.Abs(f-want) > 2+want*1e-12 {
			t.Errorf("Log2Fixed(%d) = %v, want about %v", x, f, want)
		}
	}
	// 2^k − 1: exactly k · 2^32.
	for k := 1; k < 300; k += 37 {
		x := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(k)), big.NewInt(1))
		if got := Log2Fixed(x); got.Cmp(new(big.Int).Lsh(big.NewInt(int64(k)), 32)) != 0 {
			t.Errorf("Log2Fixed(2^%d-1) = %s", k, got)
		}
	}
	// Monotone.
	prev := Log2Fixed(big.NewInt(0))
	for x := int64(1); x < 5000; x++ {
		g := Log2Fixed(big.NewInt(x))
		if g.Cmp(prev) < 0 {
			t.Fatalf("Log2Fixed(%d) < Log2Fixed(%d)", x, x-1)
		}
		prev = g
	}
}

// Outputs: amounts.csv, breakdown.csv and the trees, verified whole and per
// claim, and a changed byte is caught.
func TestOutputsVerify(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	h := &core.Holds{}
	for i := 0; i < 50; i++ {
		h.Pairs = append(h.Pairs, core.Pair{Token: "tok", Holder: randAddress(r)})
		row := core.HoldRow{Pair: int32(i), Start: int64(r.IntN(50))}
		row.Weight.SetFromBig(randAmount(r, 12))
		h.Rows = append(h.Rows, row)
	}
	rules := rulesOf(t, `{"merkle": {"formats": ["standard", "uniswap"], "leaf": ["index", "address", "amount"]}}`)
	pool, _ := new(big.Int).SetString("1000000000000000000000000", 10)
	out, err := Run(h, Campaign{Rules: rules, T0: 0, T1: 100, Now: 100, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w, err := WriteOutputs(dir, out, rules, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Files) != 4 || w.Roots["standard"] == "" || w.Roots["uniswap"] == "" {
		t.Fatalf("written %+v", w)
	}
	vs, err := VerifyDir(dir, "")
	if err != nil || len(vs) != 2 || vs[0].Total != pool.String() || vs[1].Total != pool.String() || vs[0].Claims != 50 {
		t.Fatalf("verify dir: %v %+v", err, vs)
	}
	who := strings.ToUpper(out.Rows[7].Holder[2:])
	v, err := VerifyFile(filepath.Join(dir, StandardFile), "0x"+who)
	if err != nil || v.Claim == nil || v.Claim.Amount != out.Rows[7].Amount.String() || v.Claim.Index != 7 {
		t.Fatalf("verify claim: %v %+v", err, v)
	}
	if _, err := VerifyFile(filepath.Join(dir, UniswapFile), addr(999)); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("unclaimed address: %v", err)
	}
	// The dump loads in @openzeppelin/merkle-tree with the same root.
	dump, _ := os.ReadFile(filepath.Join(dir, StandardFile))
	var loaded struct{ Root string }
	oracle(t, map[string]any{"op": "load", "dump": json.RawMessage(dump)}, &loaded)
	if loaded.Root != w.Roots["standard"] {
		t.Fatalf("npm root %s, ours %s", loaded.Root, w.Roots["standard"])
	}
	// Tampering: an amount in the distributor JSON, an amount in amounts.csv.
	uni, _ := os.ReadFile(filepath.Join(dir, UniswapFile))
	var d map[string]any
	json.Unmarshal(uni, &d)
	for _, c := range d["claims"].(map[string]any) {
		c.(map[string]any)["amount"] = "0x01"
		break
	}
	bad, _ := json.Marshal(d)
	os.WriteFile(filepath.Join(dir, "bad.json"), bad, 0o644)
	if _, err := VerifyFile(filepath.Join(dir, "bad.json"), ""); err == nil || !strings.Contains(err.Error(), "does not reach") {
		t.Fatalf("tampered claim: %v", err)
	}
	am, _ := os.ReadFile(filepath.Join(dir, AmountsFile))
	lines := strings.Split(string(am), "\n")
	lines[1] = lines[1][:len(lines[1])-1] + "7"
	if lines[1] == strings.Split(string(am), "\n")[1] {
		lines[1] = lines[1][:len(lines[1])-1] + "8"
	}
	os.WriteFile(filepath.Join(dir, AmountsFile), []byte(strings.Join(lines, "\n")), 0o644)
	if _, err := VerifyDir(dir, ""); err == nil || !strings.Contains(err.Error(), AmountsFile) {
		t.Fatalf("tampered amounts.csv: %v", err)
	}
	// ReadAmounts reads what WriteOutputs wrote (a previous epoch).
	os.WriteFile(filepath.Join(dir, AmountsFile), am, 0o644)
	prev, err := ReadAmounts(filepath.Join(dir, AmountsFile))
	if err != nil || len(prev) != 50 {
		t.Fatalf("read amounts: %v (%d)", err, len(prev))
	}
	_ = uint256.NewInt
}
