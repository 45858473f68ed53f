package main

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/poh-holdmetrics/poh-holdmetrics/capi/capitest"
)

// poh_score_by_holder through the C API: its rows are the aggregator's
// (recorded and queried at now through the same API) bit for bit, by holder
// and by token, windowed and exact; errors and leaks as for every export.

// randomGroupCols: few holders (addresses in both cases, so that canonical
// ids merge), a few tokens, open holds and ends on both sides of now.
func randomGroupCols(r *rand.Rand, n int, now int64) capitest.Cols {
	c := capitest.Cols{Tokens: []string{}, Holders: []string{}}
	for i := 0; i < n; i++ {
		h := fmt.Sprintf("0x%040x", r.IntN(30))
		if r.IntN(2) == 0 {
			h = "0x" + strings.ToUpper(h[2:])
		}
		if r.IntN(4) == 0 {
			h = fmt.Sprint("holder-", r.IntN(10))
		}
		c.Holders = append(c.Holders, h)
		c.Tokens = append(c.Tokens, fmt.Sprint("T", r.IntN(3)))
		s := r.Int64N(now)
		c.Start = append(c.Start, s)
		switch r.IntN(3) {
		case 0:
			c.End, c.HasEnd = append(c.End, 0), append(c.HasEnd, 0)
		default:
			c.End, c.HasEnd = append(c.End, s+r.Int64N(now)), append(c.HasEnd, 1)
		}
		c.Weight = append(c.Weight, float64(r.IntN(1000))+r.Float64())
	}
	return c
}

// aggregatorGroup is what an aggregator answers for c recorded and queried
// at now (byToken: every token's rows, ranked by score, holder, token).
func aggregatorGroup(t *testing.T, c capitest.Cols, o capitest.GroupOpts) ([]capitest.Stat, []string, []string) {
	t.Helper()
	h := newAgg(t, capitest.Options{Window: o.Window, Exact: o.Exact})
	record(t, h, c, o.Now)
	read := func(q capitest.Q) ([]capitest.Stat, []string) {
		f, err := capitest.Query(h, q)
		wantCode(t, "query", err, capitest.OK)
		defer capitest.Free(f.Result)
		st, ex, err := capitest.StatsExact(f.Result, 0, 0)
		wantCode(t, "stats", err, capitest.OK)
		return st, ex
	}
	if !o.ByToken {
		st, ex := read(capitest.Q{Now: o.Now, N: o.N})
		return st, nil, ex
	}
	type row struct {
		st        capitest.Stat
		tok, exct string
	}
	var all []row
	seen := map[string]bool{}
	for _, tok := range c.Tokens {
		if seen[tok] {
			continue
		}
		seen[tok] = true
		st, ex := read(capitest.Q{Now: o.Now, Token: tok})
		for i := range st {
			all = append(all, row{st[i], tok, ex[i]})
		}
	}
	slices.SortFunc(all, func(a, b row) int {
		if o.Exact && len(a.exct) != len(b.exct) {
			return cmp.Compare(len(b.exct), len(a.exct))
		}
		if o.Exact {
			if c := strings.Compare(b.exct, a.exct); c != 0 {
				return c
			}
		} else if c := cmp.Compare(b.st.Score, a.st.Score); c != 0 {
			return c
		}
		if c := strings.Compare(a.st.HolderID, b.st.HolderID); c != 0 {
			return c
		}
		return strings.Compare(a.tok, b.tok)
	})
	if o.N > 0 && len(all) > int(o.N) {
		all = all[:o.N]
	}
	var st []capitest.Stat
	var toks, ex []string
	for _, r := range all {
		st, toks, ex = append(st, r.st), append(toks, r.tok), append(ex, r.exct)
	}
	return st, toks, ex
}

func TestScoreByHolderMatchesAggregator(t *testing.T) {
	leakCheck(t)
	r := rand.New(rand.NewPCG(14, 2))
	for round := 0; round < 24; round++ {
		now := int64(10_000 + r.IntN(10_000))
		c := randomGroupCols(r, 1+r.IntN(300), now)
		o := capitest.GroupOpts{Now: now, Threads: int64(round % 3), ByToken: round%2 == 1}
		if round%4 >= 2 {
			t0 := r.Int64N(now)
			o.Window = &capitest.Window{T0: t0, T1: t0 + r.Int64N(now)}
		}
		if round%6 == 5 {
			o.N = 1 + r.Int64N(10)
		}
		if round%8 == 7 {
			o.Exact = true
			for i := range c.Weight {
				c.Weight[i] = math.Floor(c.Weight[i])
			}
		}
		t.Run(fmt.Sprintf("round %d %+v", round, o), func(t *testing.T) {
			got, err := capitest.ScoreByHolder(c, o)
			wantCode(t, "score_by_holder", err, capitest.OK)
			want, wantTok, wantEx := aggregatorGroup(t, c, o)
			if len(got.Rows) != len(want) || got.NRows != int64(len(want)) {
				t.Fatalf("%d rows (reported %d), aggregator %d", len(got.Rows), got.NRows, len(want))
			}
			ids, toks := 0, 0
			for i := range want {
				g, w := got.Rows[i], want[i]
				if g.HolderID != w.HolderID || math.Float64bits(g.Score) != math.Float64bits(w.Score) ||
					g.TotalSeconds != w.TotalSeconds || g.Events != w.Events || g.OpenHolds != w.OpenHolds ||
					g.Tokens != w.Tokens || g.Updated != now || w.Updated != now {
					t.Fatalf("row %d: %+v, aggregator %+v", i, g, w)
				}
				if o.Exact && got.Exact[i] != wantEx[i] {
					t.Fatalf("row %d: exact %s, aggregator %s", i, got.Exact[i], wantEx[i])
				}
				wantToken := ""
				if o.ByToken {
					wantToken = wantTok[i]
				}
				if got.Tokens[i] != wantToken {
					t.Fatalf("row %d: token %q, want %q", i, got.Tokens[i], wantToken)
				}
				ids, toks = ids+len(g.HolderID), toks+len(got.Tokens[i])
			}
			if got.IDBytes != int64(ids) || got.TokenBytes != int64(toks) {
				t.Fatalf("sizes %d, %d; rows have %d, %d", got.IDBytes, got.TokenBytes, ids, toks)
			}
		})
	}
}

// TestScoreByHolderTWAB: each row's TWAB is its windowed score over the
// window's elapsed time.
func TestScoreByHolderTWAB(t *testing.T) {
	leakCheck(t)
	r := rand.New(rand.NewPCG(3, 3))
	c := randomGroupCols(r, 200, 5000)
	w := &capitest.Window{T0: 1000, T1: 9000}
	score, err := capitest.ScoreByHolder(c, capitest.GroupOpts{Now: 5000, Window: w})
	wantCode(t, "score", err, capitest.OK)
	twab, err := capitest.ScoreByHolder(c, capitest.GroupOpts{Now: 5000, Window: w, TWAB: true})
	wantCode(t, "twab", err, capitest.OK)
	by := map[string]float64{}
	for _, s := range score.Rows {
		by[s.HolderID] = s.Score
	}
	for _, s := range twab.Rows {
		if s.Score != by[s.HolderID]/4000 {
			t.Fatalf("%s: TWAB %v, score %v", s.HolderID, s.Score, by[s.HolderID])
		}
	}
	_, err = capitest.ScoreByHolder(c, capitest.GroupOpts{Now: 500, Window: w, TWAB: true})
	if err.Code != capitest.InvalidEvent || err.Field != "window" || err.Reason != "empty_window" {
		t.Fatalf("TWAB before the window: %+v", err)
	}
}

func TestScoreByHolderErrors(t *testing.T) {
	leakCheck(t)
	c := capitest.Cols{Start: []int64{1, 2, 3}, End: []int64{5, 1, 9}, HasEnd: []uint8{1, 1, 1},
		Weight: []float64{1, 1, 1}, Tokens: []string{"T", "T", ""}, Holders: []string{"a", "b", "c"}}
	_, err := capitest.ScoreByHolder(c, capitest.GroupOpts{Now: 10})
	if err.Code != capitest.InvalidEvent || err.Index != 1 || err.Field != "end" || err.Reason != "end_before_start" {
		t.Fatalf("bad row: %+v", err)
	}
	c.End[1] = 6
	_, err = capitest.ScoreByHolder(c, capitest.GroupOpts{Now: 10})
	if err.Code != capitest.InvalidEvent || err.Index != 2 || err.Field != "token_id" || err.Reason != "empty" {
		t.Fatalf("bad token: %+v", err)
	}
	c.Tokens[2] = "T"
	for _, tc := range []struct {
		what string
		c    capitest.Cols
		o    capitest.GroupOpts
		code int
		msg  string
	}{
		{"twab without a window", c, capitest.GroupOpts{Now: 10, TWAB: true}, capitest.InvalidArgument, "POH_GROUP_TWAB needs"},
		{"unknown flag", c, capitest.GroupOpts{Now: 10, Flags: 1 << 7}, capitest.InvalidArgument, "unknown bits"},
		{"negative threads", c, capitest.GroupOpts{Now: 10, Threads: -1}, capitest.InvalidArgument, "threads -1"},
		{"negative n", c, capitest.GroupOpts{Now: 10, N: -1}, capitest.InvalidEvent, "n -1"},
		{"bad now", c, capitest.GroupOpts{Now: -5}, capitest.InvalidEvent, "now -5"},
		{"no holder column", capitest.Cols{Start: []int64{1}}, capitest.GroupOpts{Now: 10}, capitest.InvalidEvent,
			"holder_id absent"},
		{"packed rows", capitest.Cols{Rows: []capitest.Event{{Start: 1, End: 2, Weight: 1}}}, capitest.GroupOpts{Now: 10},
			capitest.InvalidEvent, "holder_id absent"},
		{"by token without tokens", capitest.Cols{Start: []int64{1}, Holders: []string{"a"}},
			capitest.GroupOpts{Now: 10, ByToken: true}, capitest.InvalidEvent, "token_id absent"},
	} {
		_, err := capitest.ScoreByHolder(tc.c, tc.o)
		if err.Code != tc.code || !strings.Contains(err.Message, tc.msg) {
			t.Errorf("%s: %+v, want %d %q", tc.what, err, tc.code, tc.msg)
		}
	}
	// no token column: one token; a query result read with token columns has "" tokens
	g, err := capitest.ScoreByHolder(capitest.Cols{Start: []int64{1, 2}, Holders: []string{"a", "a"}},
		capitest.GroupOpts{Now: 10})
	wantCode(t, "no tokens", err, capitest.OK)
	if len(g.Rows) != 1 || g.Rows[0].Score != 17 || g.Rows[0].Tokens != 1 || g.Tokens[0] != "" {
		t.Fatalf("no token column: %+v", g)
	}
}
