package core

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/holiman/uint256"
)

// The kernel's contract: its rows are the aggregator's rows after recording
// the batch at now (with the kernel's window as a campaign window) and
// querying at now, bit for bit. These tests hold it to that on the shared
// vectors and on random batches, with one and two workers and with one and
// many partitions.

// kernelCols packs events as the C API passes them; exact mode takes the
// exact weights (Wei) when some event has one (the others' integer float
// weights become Wei too).
func kernelCols(t *testing.T, events []HoldEvent, exact bool) *Columns {
	t.Helper()
	c := toColumns(events)
	wei := false
	for _, e := range events {
		wei = wei || e.Wei != nil
	}
	if exact && wei {
		c.Weight = nil
		c.Wei = make([]byte, 32*len(events))
		for i, e := range events {
			w, err := e.weightExact(i)
			if err != nil {
				return nil // an invalid weight: the caller uses the events' own error
			}
			b := w.Bytes32()
			copy(c.Wei[32*i:], b[:])
		}
	}
	return c
}

// withKnobs runs f with the kernel forced to the given partition bits (-1:
// its own choice) and to start a worker for every row.
func withKnobs(bitsForced int, f func()) {
	defer func(r, b int) { kernelRowsPerWorker, kernelPartitionBits = r, b }(kernelRowsPerWorker, kernelPartitionBits)
	kernelRowsPerWorker, kernelPartitionBits = 1, bitsForced
	f()
}

// aggregatorRows is what an aggregator gives for the batch recorded and
// queried at now: one row per holder, or with byToken every (holder, token)
// row in kernel order, each with its token.
func aggregatorRows(t *testing.T, events []HoldEvent, o GroupOptions) ([]HolderStat, []string, error) {
	t.Helper()
	a, err := New(Options{Window: o.Window, Exact: o.Exact})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Record(o.Now, events, RecordOptions{}); err != nil {
		return nil, nil, err
	}
	if !o.ByToken {
		rows, err := a.Query(Query{Now: o.Now, N: o.N})
		return rows, nil, err
	}
	seen := map[string]bool{}
	var rows []HolderStat
	var toks []string
	for _, e := range events {
		tok := CanonicalID(e.TokenID)
		if seen[tok] {
			continue
		}
		seen[tok] = true
		rs, err := a.Query(Query{Now: o.Now, Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			rows = append(rows, r)
			toks = append(toks, tok)
		}
	}
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	less := statLess
	if o.Exact {
		less = exactLess
	}
	slices.SortFunc(idx, func(x, y int) int {
		if c := less(&rows[x], &rows[y]); c != 0 {
			return c
		}
		return cmp.Compare(toks[x], toks[y])
	})
	outR, outT := make([]HolderStat, len(idx)), make([]string, len(idx))
	for j, i := range idx {
		outR[j], outT[j] = rows[i], toks[i]
	}
	if o.N > 0 && len(outR) > o.N {
		outR, outT = outR[:o.N], outT[:o.N]
	}
	return outR, outT, nil
}

// sameRows fails unless the kernel's result is want (and wantTok) exactly.
func sameKernelRows(t *testing.T, g *Grouped, want []HolderStat, wantTok []string) {
	t.Helper()
	if g.Len() != len(want) {
		t.Fatalf("%d rows, aggregator %d", g.Len(), len(want))
	}
	for i := range want {
		got, w := g.Row(i), want[i]
		exactDiff := (got.Exact == nil) != (w.Exact == nil) || (got.Exact != nil && got.Exact.Cmp(w.Exact) != 0)
		if got.HolderID != w.HolderID || math.Float64bits(got.Score) != math.Float64bits(w.Score) ||
			got.TotalSeconds != w.TotalSeconds || got.Events != w.Events || got.OpenHolds != w.OpenHolds ||
			got.Tokens != w.Tokens || got.UpdatedAt != w.UpdatedAt || exactDiff {
			t.Fatalf("row %d: kernel %+v (score %x), aggregator %+v (score %x)", i, got,
				math.Float64bits(got.Score), w, math.Float64bits(w.Score))
		}
		if wantTok != nil && g.TokenID(i) != wantTok[i] {
			t.Fatalf("row %d: token %q, aggregator %q", i, g.TokenID(i), wantTok[i])
		}
	}
}

// checkKernel compares the kernel with the aggregator for every worker and
// partition setting, by holder and by token.
func checkKernel(t *testing.T, events []HoldEvent, o GroupOptions) {
	t.Helper()
	c := kernelCols(t, events, o.Exact)
	for _, byToken := range []bool{false, true} {
		o.ByToken = byToken
		want, wantTok, aggErr := aggregatorRows(t, events, o)
		for _, threads := range []int{1, 2, 3} {
			for _, pb := range []int{-1, 0, 3} {
				o.Threads = threads
				withKnobs(pb, func() {
					g, err := ScoreByHolder(c, o)
					if aggErr != nil || err != nil {
						sameKernelError(t, err, aggErr)
						return
					}
					sameKernelRows(t, g, want, wantTok)
				})
			}
		}
	}
}

func sameKernelError(t *testing.T, got, want error) {
	t.Helper()
	var g, w *ValidationError
	if !errors.As(got, &g) || !errors.As(want, &w) || *g != *w {
		t.Fatalf("kernel error %v, aggregator error %v", got, want)
	}
}

func TestKernelVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			events := make([]HoldEvent, len(v.Events))
			for i, ve := range v.Events {
				events[i] = ve.event(t)
			}
			g, err := ScoreByHolder(toColumns(events), GroupOptions{ScoreOptions: ScoreOptions{Now: v.Now}})
			if v.Error != nil {
				checkVectorResult(t, v, 0, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// the rows add up to the batch score (each row is its holder's score)
			var acc neumaier
			for i := 0; i < g.Len(); i++ {
				acc.add(g.Score[i])
			}
			if want := *v.Score; math.Abs(acc.value()-want) > 4*ulp(want) {
				t.Fatalf("rows add up to %v, vector %v", acc.value(), want)
			}
			checkKernel(t, events, GroupOptions{ScoreOptions: ScoreOptions{Now: v.Now}})
		})
	}
}

func TestKernelWindowVectors(t *testing.T) {
	for _, v := range loadWindowVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			events := make([]HoldEvent, len(v.Events))
			for i, ve := range v.Events {
				events[i] = ve.event(t)
			}
			w := Window{v.Window[0], v.Window[1]}
			o := GroupOptions{ScoreOptions: ScoreOptions{Now: v.Now, Window: &w}}
			g, err := ScoreByHolder(toColumns(events), o)
			if v.Error != nil {
				checkVectorResult(t, v.vector, 0, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var acc neumaier
			for i := 0; i < g.Len(); i++ {
				acc.add(g.Score[i])
			}
			if want := *v.Score; math.Abs(acc.value()-want) > 4*ulp(want) {
				t.Fatalf("rows add up to %v, vector %v", acc.value(), want)
			}
			checkKernel(t, events, o)
			// A TWAB row is its windowed score over the elapsed window.
			o.TWAB = true
			tw, err := ScoreByHolder(toColumns(events), o)
			if v.TWABError != nil || (v.TWAB == nil && err != nil) {
				var ve *ValidationError
				if !errors.As(err, &ve) || (v.TWABError != nil && string(ve.Reason) != string(v.TWABError.Reason)) {
					t.Fatalf("TWAB: %v, want %+v", err, v.TWABError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, _ := w.elapsed(v.Now)
			for i := 0; i < tw.Len(); i++ {
				if want := g.Row(indexOfHolder(g, tw.Row(i).HolderID)).Score / float64(d); tw.Score[i] != want {
					t.Fatalf("TWAB of %s: %v, want %v", tw.Row(i).HolderID, tw.Score[i], want)
				}
			}
		})
	}
}

func indexOfHolder(g *Grouped, id string) int {
	for i := 0; i < g.Len(); i++ {
		if g.Row(i).HolderID == id {
			return i
		}
	}
	return -1
}

func TestKernelExactVectors(t *testing.T) {
	for _, v := range loadExactVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			events, perr := v.events()
			if perr != nil {
				return // a weight that does not parse: nothing to group
			}
			o := GroupOptions{ScoreOptions: ScoreOptions{Now: v.Now, Exact: true}}
			if len(v.Window) == 2 {
				o.Window = &Window{v.Window[0], v.Window[1]}
			}
			c := kernelCols(t, events, true)
			if c == nil {
				return
			}
			g, err := ScoreByHolder(c, o)
			if v.Error != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Index != v.Error.Index || ve.Field != v.Error.Field ||
					string(ve.Reason) != v.Error.Reason {
					t.Fatalf("got %v, want %+v", err, *v.Error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sum := new(big.Int)
			for i := range g.Exact {
				sum.Add(sum, g.Exact[i].Big())
			}
			if sum.String() != v.Score {
				t.Fatalf("rows add up to %s, vector %s", sum, v.Score)
			}
			checkKernel(t, events, o)
		})
	}
}

// randomKernelEvents: holders and tokens that collide often, addresses in
// mixed case (one holder whatever the case), open holds, ends before and
// after now, weights with many distinct bits.
func randomKernelEvents(r *rand.Rand, n, holders, tokens int, exact bool, now int64) []HoldEvent {
	out := make([]HoldEvent, n)
	for i := range out {
		h := r.IntN(holders)
		hid := fmt.Sprintf("h%d", h)
		if h%3 == 0 {
			hid = fmt.Sprintf("0x%040x", h*0xabcdef)
			if r.IntN(2) == 0 {
				hid = "0x" + strings.ToUpper(hid[2:])
			}
		}
		tid := fmt.Sprintf("T%d", r.IntN(tokens))
		if r.IntN(7) == 0 {
			tid = "0xAbCdEf0000000000000000000000000000000001"
		}
		s := 1000 + r.Int64N(10_000)
		e := HoldEvent{TokenID: tid, HolderID: hid, Start: s, Weight: r.Float64() * math.Pow(10, float64(r.IntN(16)))}
		if exact {
			e.Weight = float64(r.IntN(1 << 20))
			if r.IntN(3) == 0 {
				w := uint256.Int{r.Uint64(), r.Uint64(), r.Uint64() >> 3, 0}
				e.Wei = WeiOf(&w)
			}
		}
		switch r.IntN(5) {
		case 0: // open
		case 1: // ends after now
			e.End, e.HasEnd = s+r.Int64N(20_000), true
		case 2: // ends at now: credited, not live
			e.End, e.HasEnd = max(now, s), true
		default:
			e.End, e.HasEnd = s+r.Int64N(3000), true
		}
		out[i] = e
	}
	return out
}

func TestKernelMatchesAggregatorRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 1))
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	for round := 0; round < rounds; round++ {
		exact := round%4 == 3
		now := 6000 + r.Int64N(6000)
		events := randomKernelEvents(r, 1+r.IntN(600), 1+r.IntN(80), 1+r.IntN(4), exact, now)
		o := GroupOptions{ScoreOptions: ScoreOptions{Now: now, Exact: exact}}
		switch r.IntN(3) {
		case 1:
			t0 := r.Int64N(8000)
			o.Window = &Window{t0, t0 + r.Int64N(8000)}
		case 2:
			o.N = 1 + r.IntN(20)
		}
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) { checkKernel(t, events, o) })
	}
}

// TestKernelTopN: the top n are the first n rows of the full ranking, ties
// broken by holder id (many rows with equal scores here).
func TestKernelTopN(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 7))
	events := make([]HoldEvent, 5000)
	for i := range events {
		events[i] = HoldEvent{TokenID: "T", HolderID: fmt.Sprint("h", r.IntN(700)), Start: 0, End: int64(1 + r.IntN(3)),
			HasEnd: true, Weight: 1}
	}
	c := toColumns(events)
	withKnobs(4, func() {
		all, err := ScoreByHolder(c, GroupOptions{ScoreOptions: ScoreOptions{Now: 10}, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 7, 100, 699, 700, 5000} {
			top, err := ScoreByHolder(c, GroupOptions{ScoreOptions: ScoreOptions{Now: 10}, N: n, Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			if top.Len() != min(n, all.Len()) {
				t.Fatalf("top %d: %d rows", n, top.Len())
			}
			for i := 0; i < top.Len(); i++ {
				if top.Row(i) != all.Row(i) {
					t.Fatalf("top %d row %d: %+v, ranking %+v", n, i, top.Row(i), all.Row(i))
				}
			}
		}
	})
}

// TestKernelLowestBadRow: with the batch split over workers, the error is
// still the lowest-index bad row's, fields in contract order, and a TWAB
// without a window, a negative n or missing ids are refused up front.
func TestKernelLowestBadRow(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	events := randomKernelEvents(r, 3000, 50, 2, false, 5000)
	events[2500].Weight = math.NaN()
	events[1700].End, events[1700].HasEnd = events[1700].Start-1, true
	events[2900].HolderID = ""
	c := toColumns(events)
	withKnobs(-1, func() {
		for _, threads := range []int{1, 2, 4} {
			_, err := ScoreByHolder(c, GroupOptions{ScoreOptions: ScoreOptions{Now: 5000}, Threads: threads})
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Index != 1700 || ve.Field != "end" || ve.Reason != ReasonEndBeforeStart {
				t.Fatalf("threads %d: %v", threads, err)
			}
		}
	})
	cases := []struct {
		c    *Columns
		o    GroupOptions
		want string
	}{
		{c, GroupOptions{ScoreOptions: ScoreOptions{Now: 5, TWAB: true}}, "window none: a TWAB needs a window"},
		{c, GroupOptions{ScoreOptions: ScoreOptions{Now: 5}, N: -1}, "n -1: must be >= 0"},
		{&Columns{Start: []int64{1}}, GroupOptions{ScoreOptions: ScoreOptions{Now: 5}}, "holder_id absent: column is required"},
		{&Columns{Start: []int64{1}, Holder: IDColumn{Data: []byte("a"), Offsets: []int64{0, 1}}},
			GroupOptions{ScoreOptions: ScoreOptions{Now: 5}, ByToken: true}, "token_id absent: column is required to group by token"},
		{c, GroupOptions{ScoreOptions: ScoreOptions{Now: -1}}, "now -1: is outside [0, 253402300799]"},
	}
	for _, tc := range cases {
		if _, err := ScoreByHolder(tc.c, tc.o); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}

// TestKernelWithoutTokens: no token column is one token; an empty batch is
// no row.
func TestKernelWithoutTokens(t *testing.T) {
	events := []HoldEvent{{TokenID: "T", HolderID: "b", Start: 0, End: 5, HasEnd: true, Weight: 2},
		{TokenID: "T", HolderID: "a", Start: 3, Weight: 1}, {TokenID: "T", HolderID: "b", Start: 9, Weight: 1}}
	c := toColumns(events)
	c.Token = IDColumn{}
	g, err := ScoreByHolder(c, GroupOptions{ScoreOptions: ScoreOptions{Now: 10}})
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := aggregatorRows(t, events, GroupOptions{ScoreOptions: ScoreOptions{Now: 10}})
	sameKernelRows(t, g, want, nil)
	g, err = ScoreByHolder(&Columns{Start: []int64{}, Holder: IDColumn{Offsets: []int64{0}}},
		GroupOptions{ScoreOptions: ScoreOptions{Now: 10}, ByToken: false})
	if err != nil || g.Len() != 0 {
		t.Fatalf("empty batch: %v rows, %v", g, err)
	}
}

// TestDecodeAddress: the SWAR address check and decoding agree with
// the address rule and encoding/hex on ids near the rule's edges, byte for byte.
func TestDecodeAddress(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	const alphabet = "0123456789abcdefABCDEF@`GgxX/:\x00\xff"
	for i := 0; i < 200_000; i++ {
		b := []byte("0x" + strings.Repeat("0", 40))
		for j := 2; j < 42; j++ {
			if r.IntN(40) == 0 {
				b[j] = alphabet[16+r.IntN(len(alphabet)-16)]
			} else {
				b[j] = alphabet[r.IntN(22)]
			}
		}
		if r.IntN(50) == 0 {
			b[r.IntN(2)] = 'X'
		}
		if r.IntN(50) == 0 {
			b[2+r.IntN(40)] = byte(r.IntN(256))
		}
		var got [20]byte
		ok := decodeAddress(b, &got)
		strict := b[0] == '0' && b[1] == 'x'
		for _, c := range b[2:] {
			strict = strict && strings.ContainsRune("0123456789abcdefABCDEF", rune(c))
		}
		if ok != strict {
			t.Fatalf("%q: decodeAddress %v, want %v", b, ok, strict)
		}
		if !ok {
			continue
		}
		want, err := hex.DecodeString(string(b[2:]))
		if err != nil || !bytes.Equal(got[:], want) {
			t.Fatalf("%q: %x, want %x (%v)", b, got, want, err)
		}
		if s := string(appendAddress(nil, got[:])); s != CanonicalID(string(b)) {
			t.Fatalf("%q: text %s", b, s)
		}
	}
}

// kernelBenchColumns is n rows over the given number of holders (wallet
// addresses, in random order), one token, 10% open holds: the layout the C
// API receives, built directly (a []HoldEvent of 10M rows would take GBs).
func kernelBenchColumns(n, holders int) *Columns {
	r := rand.New(rand.NewPCG(42, 42))
	c := &Columns{Start: make([]int64, n), End: make([]int64, n), HasEnd: make([]uint8, n), Weight: make([]float64, n),
		Holder: IDColumn{Data: make([]byte, 0, 42*n), Offsets: make([]int64, n+1)},
		Token:  IDColumn{Data: make([]byte, 0, 5*n), Offsets: make([]int64, n+1)}}
	for i := 0; i < n; i++ {
		s := 1_600_000_000 + r.Int64N(100_000_000)
		c.Start[i], c.Weight[i] = s, r.Float64()*100
		if r.IntN(10) > 0 {
			c.End[i], c.HasEnd[i] = s+r.Int64N(10_000_000), 1
		}
		c.Holder.Data = fmt.Appendf(c.Holder.Data, "0x%040x", r.IntN(holders))
		c.Holder.Offsets[i+1] = int64(len(c.Holder.Data))
		c.Token.Data = append(c.Token.Data, "TOKEN"...)
		c.Token.Offsets[i+1] = int64(len(c.Token.Data))
	}
	return c
}

// BenchmarkScoreByHolder: the kernel on 10M rows over 1M holders (20,000
// over 2,000 with -short), one and two goroutines; ns/event is per row.
func BenchmarkScoreByHolder(b *testing.B) {
	n, holders := 10_000_000, 1_000_000
	if testing.Short() {
		n, holders = 20_000, 2_000
	}
	c := kernelBenchColumns(n, holders)
	now := int64(1_700_000_000)
	w := Window{1_620_000_000, 1_680_000_000}
	for _, tc := range []struct {
		name string
		o    GroupOptions
	}{
		{"top100", GroupOptions{ScoreOptions: ScoreOptions{Now: now}, N: 100}},
		{"all", GroupOptions{ScoreOptions: ScoreOptions{Now: now}}},
		{"twab-top100", GroupOptions{ScoreOptions: ScoreOptions{Now: now, Window: &w, TWAB: true}, N: 100}},
		{"by-token-top100", GroupOptions{ScoreOptions: ScoreOptions{Now: now}, N: 100, ByToken: true}},
	} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/rows=%d/holders=%d/threads=%d", tc.name, n, holders, threads), func(b *testing.B) {
				o := tc.o
				o.Threads = threads
				for b.Loop() {
					if _, err := ScoreByHolder(c, o); err != nil {
						b.Fatal(err)
					}
				}
				perEvent(b, n)
			})
		}
	}
}
