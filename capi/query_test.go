package main

import (
	"cmp"
	"slices"
	"strings"
	"testing"

	"github.com/poh-holdmetrics/poh-holdmetrics/capi/capitest"
)

// noID is s without its holder id: Found.First of a query without a holder
// carries none (the id is in the result's ids buffer).
func noID(s capitest.Stat) capitest.Stat {
	s.HolderID = ""
	return s
}

// TestQueryHolderMatchesTokenTopNRow: poh_query with a holder (and a token)
// answers inline, with no result handle: rows 0 or 1, the row in first with
// the caller's holder as its id (id_offset 0, id_len = holder_len), exactly
// the row the token's top-n shows for that holder, open holds included; a
// pair that does not exist gives rows 0 and a zeroed first.
func TestQueryHolderMatchesTokenTopNRow(t *testing.T) {
	leakCheck(t)
	h := newAgg(t, capitest.Options{})
	record(t, h, capitest.Cols{
		Start:   []int64{10, 20, 5, 30, 7},
		End:     []int64{50, 0, 9, 0, 8},
		HasEnd:  []uint8{1, 0, 1, 0, 1},
		Weight:  []float64{2, 1.5, 1, 3, 0.5},
		Tokens:  []string{"POH", "POH", "LP", "POH", "POH"},
		Holders: []string{"alice", "alice", "alice", "bob", "carol"},
	}, 100)

	const now = 200
	top, err := capitest.Rows(h, capitest.Q{Now: now, N: 100, Token: "POH"})
	wantCode(t, "top-n", err, capitest.OK)
	if len(top) != 3 {
		t.Fatalf("top-n(POH): %d rows", len(top))
	}
	all, err := capitest.Rows(h, capitest.Q{Now: now, Token: "POH"})
	wantCode(t, "every POH row", err, capitest.OK)
	if !slices.Equal(all, top) {
		t.Fatalf("N 0 %+v, N 100 %+v", all, top)
	}
	for _, want := range top {
		f, err := capitest.Query(h, capitest.Q{Now: now, Token: "POH", Holder: want.HolderID})
		wantCode(t, "holder "+want.HolderID, err, capitest.OK)
		if f.Result != 0 || f.Rows != 1 || f.FirstID != [2]int64{0, int64(len(want.HolderID))} ||
			f.IDBytes != int64(len(want.HolderID)) || f.First != want || want.Tokens != 1 {
			t.Errorf("query(POH, %s) = %+v; top-n row %+v", want.HolderID, f, want)
		}
	}
	for _, c := range []struct{ token, holder string }{{"LP", "bob"}, {"POH", "dave"}, {"NOPE", "alice"}, {"", "dave"}} {
		f, err := capitest.Query(h, capitest.Q{Now: now, Token: c.token, Holder: c.holder})
		wantCode(t, "holder "+c.token+"/"+c.holder, err, capitest.OK)
		if f.Result != 0 || f.Rows != 0 || f.IDBytes != 0 || f.First != (capitest.Stat{}) || f.FirstID != [2]int64{} {
			t.Errorf("query(%q, %s) = %+v; want rows 0, no result, zeroed first", c.token, c.holder, f)
		}
	}
	// A holder without a token: its whole row, as the full ranking shows it.
	ranking := rows(t, h, now)
	for _, want := range ranking {
		f, err := capitest.Query(h, capitest.Q{Now: now, Holder: want.HolderID})
		wantCode(t, "holder "+want.HolderID, err, capitest.OK)
		if f.Result != 0 || f.Rows != 1 || f.First != want || f.FirstID != [2]int64{0, int64(len(want.HolderID))} {
			t.Errorf("query(%s) = %+v; ranking row %+v", want.HolderID, f, want)
		}
	}
	// bob 170 s × 3; alice 40×2 + 180×1.5 + 4 (LP); carol 0.5.
	if len(ranking) != 3 || ranking[0].HolderID != "bob" || ranking[1].HolderID != "alice" || ranking[1].Tokens != 2 ||
		ranking[1].Score != 354 {
		t.Fatalf("ranking %+v", ranking)
	}
	// Open holds grow with now.
	a, _ := capitest.Query(h, capitest.Q{Now: 300, Token: "POH", Holder: "alice"})
	b, _ := capitest.Query(h, capitest.Q{Now: 400, Token: "POH", Holder: "alice"})
	if b.First.Score-a.First.Score != 150 || b.First.OpenHolds != 1 {
		t.Errorf("alice's open hold: score %v then %v, open %d", a.First.Score, b.First.Score, b.First.OpenHolds)
	}
}

// TestQueryResultRows: without a holder, poh_query returns a result handle
// (also when no row matches) with the rows of the former snapshot / top-n:
// N 0 is every row in ranking order (score descending, then holder_id
// ascending), N > 0 the first N of them, a token its (holder, token) rows;
// rows, id_bytes and first describe the result.
func TestQueryResultRows(t *testing.T) {
	leakCheck(t)
	h := newAgg(t, capitest.Options{})
	f, err := capitest.Query(h, capitest.Q{Now: 10})
	wantCode(t, "empty query", err, capitest.OK)
	if f.Result == 0 || f.Rows != 0 || f.IDBytes != 0 || f.First != (capitest.Stat{}) || f.FirstID != [2]int64{} {
		t.Fatalf("empty query: %+v", f)
	}
	empty, err := capitest.Stats(f.Result, 0, 0)
	wantCode(t, "empty stats", err, capitest.OK)
	capitest.Free(f.Result)
	if len(empty) != 0 {
		t.Fatalf("empty stats %+v", empty)
	}

	// 30 holders over two tokens, integer scores with ties.
	var c capitest.Cols
	for i := range 30 {
		for j, tok := range []string{"A", "B"} {
			if (i+j)%4 == 0 {
				continue
			}
			c.Start, c.End = append(c.Start, int64(10*(i%5))), append(c.End, int64(10*(i%5)+5*(j+1)))
			c.HasEnd, c.Weight = append(c.HasEnd, 1), append(c.Weight, float64(1+i%3))
			c.Tokens, c.Holders = append(c.Tokens, tok), append(c.Holders, "h"+itoa(int64(i)))
		}
	}
	c.Start, c.End = append(c.Start, 100), append(c.End, 0) // one open hold
	c.HasEnd, c.Weight = append(c.HasEnd, 0), append(c.Weight, 1)
	c.Tokens, c.Holders = append(c.Tokens, "B"), append(c.Holders, "h7")
	record(t, h, c, 100)
	const now = 1000

	for _, token := range []string{"", "A", "B"} {
		// The expected ranking, from poh_score of each holder's events.
		sub := c
		if token != "" {
			sub = capitest.Cols{}
			for i, tok := range c.Tokens {
				if tok == token {
					sub.Start, sub.End = append(sub.Start, c.Start[i]), append(sub.End, c.End[i])
					sub.HasEnd, sub.Weight = append(sub.HasEnd, c.HasEnd[i]), append(sub.Weight, c.Weight[i])
					sub.Tokens, sub.Holders = append(sub.Tokens, tok), append(sub.Holders, c.Holders[i])
				}
			}
		}
		type exp struct {
			id    string
			score float64
		}
		var want []exp
		for id, g := range byHolder(sub) {
			s, err := capitest.Score(g, capitest.ScoreOpts{Now: now})
			wantCode(t, "score", err, capitest.OK)
			want = append(want, exp{id, s})
		}
		slices.SortFunc(want, func(x, y exp) int {
			return cmp.Or(cmp.Compare(y.score, x.score), strings.Compare(x.id, y.id))
		})

		f, err := capitest.Query(h, capitest.Q{Now: now, Token: token})
		wantCode(t, "query "+token, err, capitest.OK)
		got, err := capitest.Stats(f.Result, 0, 0)
		wantCode(t, "stats", err, capitest.OK)
		capitest.Free(f.Result)
		if len(got) != len(want) || f.Rows != int64(len(got)) {
			t.Fatalf("token %q: %d rows (rows %d), want %d", token, len(got), f.Rows, len(want))
		}
		idBytes := 0
		for i, w := range want {
			idBytes += len(got[i].HolderID)
			if got[i].HolderID != w.id || got[i].Score != w.score {
				t.Fatalf("token %q row %d: %s %v, want %s %v", token, i, got[i].HolderID, got[i].Score, w.id, w.score)
			}
			if token != "" && got[i].Tokens != 1 {
				t.Fatalf("token %q row %d: tokens %d", token, i, got[i].Tokens)
			}
			one, err := capitest.Query(h, capitest.Q{Now: now, Token: token, Holder: w.id})
			wantCode(t, "holder", err, capitest.OK)
			if one.First != got[i] {
				t.Fatalf("token %q: lookup of %s %+v, result row %+v", token, w.id, one.First, got[i])
			}
		}
		if f.IDBytes != int64(idBytes) || f.First != noID(got[0]) ||
			f.FirstID != [2]int64{0, int64(len(got[0].HolderID))} {
			t.Fatalf("token %q: found %+v, first row %+v, %d id bytes", token, f, got[0], idBytes)
		}
		// N > 0: the first N rows of that ranking, N beyond it: all of them.
		for _, n := range []int{1, 2, 7, len(got) - 1, len(got), len(got) + 5} {
			top, err := capitest.Rows(h, capitest.Q{Now: now, N: int64(n), Token: token})
			wantCode(t, "top-n", err, capitest.OK)
			if !slices.Equal(top, got[:min(n, len(got))]) {
				t.Fatalf("token %q top %d: %+v, want %+v", token, n, top, got[:min(n, len(got))])
			}
		}
	}
	// No row matches a token nobody holds: still a result, empty.
	f, err = capitest.Query(h, capitest.Q{Now: now, N: 3, Token: "NOPE"})
	wantCode(t, "unknown token", err, capitest.OK)
	if f.Result == 0 || f.Rows != 0 {
		t.Fatalf("unknown token: %+v", f)
	}
	capitest.Free(f.Result)
}

func TestQueryErrors(t *testing.T) {
	leakCheck(t)
	h := newAgg(t, capitest.Options{})
	wantCode(t, "record", capitest.RecordEvent(h, "T", "alice", 0, 0, false, 1, 10), capitest.OK)
	long := strings.Repeat("x", 257)
	for _, c := range []struct {
		name          string
		q             capitest.Q
		field, reason string
	}{
		{"bad utf-8 token", capitest.Q{Now: 10, Token: "\xff", Holder: "alice"}, "token_id", "invalid_utf8"},
		{"bad utf-8 token, no holder", capitest.Q{Now: 10, Token: "\xff"}, "token_id", "invalid_utf8"},
		{"bad utf-8 holder", capitest.Q{Now: 10, Token: "T", Holder: "\xff"}, "holder_id", "invalid_utf8"},
		{"long holder", capitest.Q{Now: 10, Holder: long}, "holder_id", "too_long"},
		{"bad now", capitest.Q{Now: -5, Token: "T", Holder: "alice"}, "now", "out_of_range"},
		{"bad now, no holder", capitest.Q{Now: -5}, "now", "out_of_range"},
		{"n < 0", capitest.Q{Now: 10, N: -1}, "n", "out_of_range"},
	} {
		f, err := capitest.Query(h, c.q)
		wantError(t, c.name, err, -1, c.field, c.reason)
		if f.Result != 0 {
			capitest.Free(f.Result)
			t.Fatalf("%s: a result handle for a refused query", c.name)
		}
	}
	_, err := capitest.Query(0, capitest.Q{Now: 10, Token: "T", Holder: "a"})
	wantCode(t, "zero handle", err, capitest.BadHandle)
	g, _ := capitest.New(capitest.Options{})
	capitest.Free(g)
	_, err = capitest.Query(g, capitest.Q{Now: 10, Token: "T", Holder: "a"})
	wantCode(t, "freed handle", err, capitest.BadHandle)
}

// TestQueryUnordered: POH_QUERY_UNORDERED gives the ranking's rows (ids and
// every column) in no particular order; with n > 0 it is the ranking's first
// n, in order, as without the flag.
func TestQueryUnordered(t *testing.T) {
	leakCheck(t)
	h := newAgg(t, capitest.Options{})
	c := capitest.Cols{}
	for i := range 300 {
		c.Start = append(c.Start, int64(i%17))
		c.End = append(c.End, int64(i%17+i%5))
		c.HasEnd = append(c.HasEnd, uint8(i%3))
		c.Weight = append(c.Weight, float64(i%4))
		c.Tokens = append(c.Tokens, "T")
		c.Holders = append(c.Holders, "h"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	record(t, h, c, 100)
	ranked, err := capitest.Rows(h, capitest.Q{Now: 200})
	wantCode(t, "ranked", err, capitest.OK)
	rows, err := capitest.Rows(h, capitest.Q{Now: 200, Flags: capitest.QueryUnordered})
	wantCode(t, "unordered", err, capitest.OK)
	byRank := func(x, y capitest.Stat) int {
		if c := cmp.Compare(y.Score, x.Score); c != 0 {
			return c
		}
		return strings.Compare(x.HolderID, y.HolderID)
	}
	slices.SortFunc(rows, byRank)
	if len(ranked) < 200 || !slices.Equal(rows, ranked) {
		t.Fatalf("unordered rows, sorted, differ from the ranking (%d and %d rows)", len(rows), len(ranked))
	}
	top, err := capitest.Rows(h, capitest.Q{Now: 200, N: 5, Flags: capitest.QueryUnordered})
	wantCode(t, "unordered top", err, capitest.OK)
	if !slices.Equal(top, ranked[:5]) {
		t.Fatalf("unordered top 5 %+v, want %+v", top, ranked[:5])
	}
}

// TestRecordEventMatchesOneRowBatch: poh_record_event (core's one-event
// path) and poh_record of the same one-row batch give the same status,
// error (index, field, reason, message), rows and metrics.
func TestRecordEventMatchesOneRowBatch(t *testing.T) {
	leakCheck(t)
	one, batch := newAgg(t, capitest.Options{}), newAgg(t, capitest.Options{})
	type ev struct {
		token, holder string
		start, end    int64
		hasEnd        bool
		weight        float64
		now           int64
	}
	events := []ev{
		{"T", "alice", 0, 10, true, 2, 100},
		{"T", "0xAbCdEf0123456789abcdef0123456789ABCDEF01", 5, 0, false, 1, 100},
		{"U", "alice", 50, 500, true, 1.5, 100}, // ends after now: live
		{"T", "bob", 10, 5, true, 1, 100},       // end before start
		{"", "bob", 0, 5, true, 1, 100},
		{"T", "bad\xff", 0, 5, true, 1, 100},
		{"T", strings.Repeat("x", 257), 0, 5, true, 1, 100},
		{"T", "bob", -1, 5, true, 1, 100},
		{"T", "bob", 0, 5, true, -2, 100},
		{"T", "bob", 0, 5, true, 1, -3}, // bad now
		{"T", "0xabcdef0123456789abcdef0123456789abcdef01", 20, 40, true, 3, 600},
	}
	for _, e := range events {
		e1 := capitest.RecordEvent(one, e.token, e.holder, e.start, e.end, e.hasEnd, e.weight, e.now)
		hasEnd := uint8(0)
		if e.hasEnd {
			hasEnd = 1
		}
		_, e2 := capitest.Record(batch, capitest.Cols{Start: []int64{e.start}, End: []int64{e.end},
			HasEnd: []uint8{hasEnd}, Weight: []float64{e.weight}, Tokens: []string{e.token},
			Holders: []string{e.holder}}, e.now, false)
		if e1 != e2 {
			t.Errorf("%+v: poh_record_event %+v, poh_record %+v", e, e1, e2)
		}
	}
	for _, q := range []capitest.Q{{Now: 1_000}, {Now: 1_000, Token: "U"}} {
		r1, err1 := capitest.Rows(one, q)
		r2, err2 := capitest.Rows(batch, q)
		if err1 != err2 || !slices.Equal(r1, r2) {
			t.Fatalf("%+v: rows %+v (%+v), batch %+v (%+v)", q, r1, err1, r2, err2)
		}
	}
	text := func(h uint64) string {
		r, err := capitest.MetricsText(h)
		wantCode(t, "metrics", err, capitest.OK)
		defer capitest.Free(r)
		s, err := capitest.Text(r, 0)
		wantCode(t, "metrics text", err, capitest.OK)
		return s
	}
	if m1, m2 := text(one), text(batch); m1 != m2 {
		t.Fatalf("metrics differ:\n%s\n---\n%s", m1, m2)
	}
}

// TestQueryResultFreedWhileRead: a snapshot's columns live in C memory that
// poh_free releases; a read racing the free either copies the whole ranking
// or fails with POH_ERR_BAD_HANDLE, never reads freed memory. (The window
// between the handle's lookup and the copy is narrow: 20 rounds exercise it,
// they do not force it.)
func TestQueryResultFreedWhileRead(t *testing.T) {
	leakCheck(t)
	h := newAgg(t, capitest.Options{})
	c := capitest.Cols{}
	for i := range 500 {
		c.Start, c.End = append(c.Start, int64(i%23)), append(c.End, int64(i%23+i%7))
		c.HasEnd, c.Weight = append(c.HasEnd, uint8(i%2)), append(c.Weight, float64(1+i%4))
		c.Tokens, c.Holders = append(c.Tokens, "T"), append(c.Holders, "0x"+strings.Repeat("ab", 19)+itoa(int64(10+i%90)))
	}
	record(t, h, c, 100)
	ranked, err := capitest.Rows(h, capitest.Q{Now: 200})
	wantCode(t, "ranked", err, capitest.OK)
	for round := range 20 {
		f, err := capitest.Query(h, capitest.Q{Now: 200})
		wantCode(t, "query", err, capitest.OK)
		first := make(chan struct{})
		done := make(chan capitest.Err)
		go func() {
			for reads := 0; ; reads++ {
				rows, err := capitest.Stats(f.Result, 0, 0)
				if err.Code != capitest.OK {
					done <- err
					return
				}
				if !slices.Equal(rows, ranked) {
					done <- capitest.Err{Code: -1, Message: "a read copied other rows than the ranking"}
					return
				}
				if reads == 0 {
					close(first)
				}
			}
		}()
		<-first
		if err := capitest.Free(f.Result); err.Code != capitest.OK {
			t.Fatalf("round %d: free: %+v", round, err)
		}
		if err := <-done; err.Code != capitest.BadHandle {
			t.Fatalf("round %d: the read after poh_free: %+v, want POH_ERR_BAD_HANDLE", round, err)
		}
	}
}
