package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// model is the single-threaded reference the aggregator is checked against.
// Weights are small dyadic numbers and durations small integers, so every sum
// is exact in float64 and results can be compared bit for bit.
type model struct {
	ttl     int64
	holders map[string]*mHolder
}

type mHolder struct {
	updated int64
	tokens  map[string]*mPair
}

type mPair struct {
	closed  float64
	seconds int64
	events  int64
	updated int64
	live    []mHold // open (end < 0) and closed holds not yet credited
}

type mHold struct {
	start, end int64 // end < 0: open
	weight     float64
}

// fold credits the closed holds that ended at or before now: a write at
// now makes them final (see model.go).
func (p *mPair) fold(now int64) {
	kept := p.live[:0]
	for _, l := range p.live {
		if l.end >= 0 && l.end <= now {
			p.closed += float64(l.end-l.start) * l.weight
			p.seconds += l.end - l.start
			continue
		}
		kept = append(kept, l)
	}
	p.live = kept
}

func (p *mPair) open() int {
	n := 0
	for _, l := range p.live {
		if l.end < 0 {
			n++
		}
	}
	return n
}

func newModel(ttl int64) *model { return &model{ttl: ttl, holders: map[string]*mHolder{}} }

func (m *model) record(now int64, events []HoldEvent) {
	for _, e := range events {
		h := m.holders[e.HolderID]
		if h == nil {
			h = &mHolder{tokens: map[string]*mPair{}}
			m.holders[e.HolderID] = h
		}
		p := h.tokens[e.TokenID]
		if p == nil {
			p = &mPair{}
			h.tokens[e.TokenID] = p
		}
		end := int64(-1)
		if e.HasEnd {
			end = e.End
		}
		p.live = append(p.live, mHold{e.Start, end, e.Weight})
		p.fold(now)
		p.events++
		p.updated, h.updated = now, now
	}
}

// closeHold returns the expected count, or -1 for "no open hold", -2 for
// "at before a start".
func (m *model) closeHold(now int64, token, holder string, at int64) int {
	h := m.holders[holder]
	if h == nil || h.tokens[token] == nil || h.tokens[token].open() == 0 {
		return -1
	}
	p := h.tokens[token]
	for _, l := range p.live {
		if l.end < 0 && at < l.start {
			return -2
		}
	}
	n := p.open()
	for i := range p.live {
		if p.live[i].end < 0 {
			p.live[i].end = at
		}
	}
	p.fold(now)
	p.updated, h.updated = now, now
	return n
}

// holding reports whether a holder has a live hold (open, or closed and not
// yet credited): GC keeps such a holder.
func (m *model) holding(id string) bool {
	for _, p := range m.holders[id].tokens {
		if len(p.live) > 0 {
			return true
		}
	}
	return false
}

func (m *model) gc(now int64) int {
	if m.ttl == 0 {
		return 0
	}
	n := 0
	for id, h := range m.holders {
		live := 0
		for _, p := range h.tokens {
			p.fold(now)
			live += len(p.live)
		}
		if live == 0 && now-h.updated > m.ttl {
			delete(m.holders, id)
			n++
		}
	}
	return n
}

func (p *mPair) stat(id string, now int64) HolderStat {
	s := HolderStat{HolderID: id, Score: p.closed, TotalSeconds: p.seconds, Events: p.events,
		OpenHolds: int64(p.open()), Tokens: 1, UpdatedAt: p.updated}
	for _, l := range p.live {
		stop := now
		if l.end >= 0 {
			stop = min(l.end, now)
		}
		if d := stop - l.start; d > 0 {
			s.Score += float64(d) * l.weight
			s.TotalSeconds += d
		}
	}
	return s
}

func (m *model) row(id string, now int64) HolderStat {
	h := m.holders[id]
	s := HolderStat{HolderID: id, UpdatedAt: h.updated}
	for _, p := range h.tokens {
		ps := p.stat(id, now)
		s.Score += ps.Score
		s.TotalSeconds += ps.TotalSeconds
		s.Events += ps.Events
		s.OpenHolds += ps.OpenHolds
		s.Tokens++
	}
	return s
}

// refOrder is the contract's order, written independently of statLess.
func refOrder(x, y HolderStat) int {
	switch {
	case x.Score > y.Score:
		return -1
	case x.Score < y.Score:
		return 1
	case x.HolderID < y.HolderID:
		return -1
	case x.HolderID > y.HolderID:
		return 1
	}
	return 0
}

func (m *model) snapshot(now int64) []HolderStat {
	out := []HolderStat{}
	for id := range m.holders {
		out = append(out, m.row(id, now))
	}
	slices.SortFunc(out, refOrder)
	return out
}

func (m *model) top(n int, now int64, token string) []HolderStat {
	var all []HolderStat
	if token == "" {
		all = m.snapshot(now)
	} else {
		for id, h := range m.holders {
			if p := h.tokens[token]; p != nil {
				all = append(all, p.stat(id, now))
			}
		}
		slices.SortFunc(all, refOrder)
	}
	if len(all) > n {
		all = all[:n]
	}
	return all
}

// gen draws random operations over a fixed universe of ids.
type gen struct {
	r       *rand.Rand
	holders []string
	tokens  []string
}

var dyadic = []float64{0, 0.25, 0.5, 1, 2, 3}

func (g *gen) event(now int64) HoldEvent {
	s := now - 500 + g.r.Int64N(1000) // some starts are after now
	e := HoldEvent{TokenID: g.tokens[g.r.IntN(len(g.tokens))], HolderID: g.holders[g.r.IntN(len(g.holders))],
		Start: s, Weight: dyadic[g.r.IntN(len(dyadic))]}
	if g.r.IntN(4) > 0 {
		e.End, e.HasEnd = s+g.r.Int64N(300), true
	}
	return e
}

func (g *gen) batch(now int64) ([]HoldEvent, bool) {
	b := make([]HoldEvent, 1+g.r.IntN(20))
	for i := range b {
		b[i] = g.event(now)
	}
	if g.r.IntN(10) == 0 { // one invalid event rejects the whole batch
		b[g.r.IntN(len(b))].Weight = -1
		return b, false
	}
	return b, true
}

func sameRows(t *testing.T, what string, got, want []HolderStat) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d\ngot  %+v\nwant %+v", what, len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: row %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

func TestModelSequential(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			g := &gen{r: r, holders: ids("h", 30), tokens: ids("t", 4)}
			ttl := int64(200)
			a, err := New(Options{TTL: time.Duration(ttl) * time.Second, Shards: 4})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			m := newModel(ttl)
			now := int64(10_000)
			for step := 0; step < 600; step++ {
				now += r.Int64N(60)
				switch op := r.IntN(10); {
				case op < 5:
					b, ok := g.batch(now)
					_, err := a.Record(now, b, RecordOptions{})
					if ok != (err == nil) {
						t.Fatalf("step %d: record ok=%v err=%v", step, ok, err)
					}
					if ok {
						m.record(now, b)
					}
				case op < 7:
					tok, h := g.tokens[r.IntN(len(g.tokens))], g.holders[r.IntN(len(g.holders))]
					at := now - 200 + r.Int64N(400)
					want := m.closeHold(now, tok, h, at)
					n, err := a.CloseHold(now, tok, h, at)
					if (want < 0) != (err != nil) || (want >= 0 && n != want) {
						t.Fatalf("step %d: close = %d, %v; model %d", step, n, err, want)
					}
				case op < 8:
					gcNow := now + r.Int64N(400)
					want := m.gc(gcNow)
					if n, err := a.GC(gcNow); err != nil || n != want {
						t.Fatalf("step %d: gc dropped %d (%v), model %d", step, n, err, want)
					}
				case op < 9:
					got, err := a.Query(Query{Now: now})
					if err != nil {
						t.Fatal(err)
					}
					sameRows(t, fmt.Sprintf("step %d snapshot", step), got, m.snapshot(now))
				default:
					n, tok := r.IntN(12), ""
					if r.IntN(2) == 0 {
						tok = g.tokens[r.IntN(len(g.tokens))]
					}
					got, err := topN(a, n, now, tok)
					if err != nil {
						t.Fatal(err)
					}
					sameRows(t, fmt.Sprintf("step %d top %d %q", step, n, tok), got, m.top(n, now, tok))
				}
			}
		})
	}
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// TestModelConcurrent runs goroutines that interleave record, close, gc,
// snapshot and top-n on one aggregator. Each goroutine owns its holders and
// tokens, so its own reference model predicts exactly what it must see of
// them, whatever the others do. GC is made predictable by time layout: live
// holders are updated at t ≥ 1e6 and GC runs at t = 1e5 with a TTL of 1000,
// so it may only drop "retired" holders, which their owner last touched at
// t = 1 and never touches again; a retired holder may be present or gone,
// but if present it must match the model.
func TestModelConcurrent(t *testing.T) {
	const workers, steps = 8, 400
	a, err := New(Options{TTL: 1000 * time.Second, Shards: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	models := make([]*model, workers)
	retiredSets := make([]map[string]bool, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			m, retired := newModel(1000), map[string]bool{}
			models[w], retiredSets[w] = m, retired
			if err := concurrentWorker(a, w, steps, m, retired); err != nil {
				errs <- err
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	// A final GC drops every retired holder; the rest must match exactly.
	if _, err := a.GC(100_000); err != nil {
		t.Fatal(err)
	}
	now := int64(2_000_000)
	got, err := a.Query(Query{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	union := newModel(0)
	for w, m := range models {
		for id, h := range m.holders {
			if !retiredSets[w][id] {
				union.holders[id] = h
			}
		}
	}
	sameRows(t, "final snapshot", got, union.snapshot(now))
}

func concurrentWorker(a *Aggregator, w, steps int, m *model, retired map[string]bool) error {
	r := rand.New(rand.NewPCG(uint64(w), 7))
	g := &gen{r: r, holders: ids(fmt.Sprintf("w%d-h", w), 40), tokens: ids(fmt.Sprintf("w%d-t", w), 3)}
	live := func() []string {
		var out []string
		for _, h := range g.holders {
			if !retired[h] {
				out = append(out, h)
			}
		}
		return out
	}
	mine := func(id string) bool { _, ok := m.holders[id]; return ok || slices.Contains(g.holders, id) }
	now := int64(1_000_000)
	for step := 0; step < steps; step++ {
		now += r.Int64N(30)
		g.holders = live()
		if len(g.holders) < 5 {
			return nil
		}
		all := append([]string(nil), g.holders...)
		switch op := r.IntN(12); {
		case op < 5:
			b, ok := g.batch(now)
			if _, err := a.Record(now, b, RecordOptions{}); ok != (err == nil) {
				return fmt.Errorf("w%d step %d: record ok=%v err=%v", w, step, ok, err)
			}
			if ok {
				m.record(now, b)
			}
		case op < 7:
			tok, h := g.tokens[r.IntN(len(g.tokens))], all[r.IntN(len(all))]
			at := now - 200 + r.Int64N(400)
			want := m.closeHold(now, tok, h, at)
			n, err := a.CloseHold(now, tok, h, at)
			if (want < 0) != (err != nil) || (want >= 0 && n != want) {
				return fmt.Errorf("w%d step %d: close = %d, %v; model %d", w, step, n, err, want)
			}
		case op < 8: // retire a holder with no live hold: touch it at t=1, never again
			h := all[r.IntN(len(all))]
			if mh := m.holders[h]; mh != nil && !m.holding(h) {
				e := HoldEvent{TokenID: g.tokens[0], HolderID: h, Start: 0, End: 1, HasEnd: true, Weight: 1}
				if _, err := a.Record(1, []HoldEvent{e}, RecordOptions{}); err != nil {
					return err
				}
				m.record(1, []HoldEvent{e})
				retired[h] = true
			}
		case op < 9:
			if _, err := a.GC(100_000); err != nil {
				return err
			}
		case op < 10:
			rows, err := a.Query(Query{Now: now})
			if err != nil {
				return err
			}
			if err := checkOwnRows(rows, m, retired, now, "", mine); err != nil {
				return fmt.Errorf("w%d step %d snapshot: %w", w, step, err)
			}
		default:
			tok := g.tokens[r.IntN(len(g.tokens))]
			n := 1 + r.IntN(10)
			rows, err := topN(a, n, now, tok)
			if err != nil {
				return err
			}
			if err := checkTop(rows, n, m, retired, now, tok); err != nil {
				return fmt.Errorf("w%d step %d top %d %s: %w", w, step, n, tok, err)
			}
		}
	}
	return nil
}

// checkOwnRows checks the rows of this worker's holders in a snapshot: every
// live holder is there and exact, a retired one is exact if present, and the
// order is the contract's order.
func checkOwnRows(rows []HolderStat, m *model, retired map[string]bool, now int64, _ string, mine func(string) bool) error {
	seen := map[string]bool{}
	for i, row := range rows {
		if i > 0 && refOrder(rows[i-1], row) >= 0 {
			return fmt.Errorf("rows %d and %d out of order", i-1, i)
		}
		if _, ok := m.holders[row.HolderID]; !ok {
			if mine(row.HolderID) {
				return fmt.Errorf("holder %s present but not in model", row.HolderID)
			}
			continue
		}
		if want := m.row(row.HolderID, now); row != want {
			return fmt.Errorf("row %+v, want %+v", row, want)
		}
		seen[row.HolderID] = true
	}
	for id := range m.holders {
		if !retired[id] && !seen[id] {
			return fmt.Errorf("live holder %s missing", id)
		}
	}
	return nil
}

func checkTop(rows []HolderStat, n int, m *model, retired map[string]bool, now int64, tok string) error {
	if len(rows) > n {
		return fmt.Errorf("%d rows for n=%d", len(rows), n)
	}
	in := map[string]bool{}
	for i, row := range rows {
		if i > 0 && refOrder(rows[i-1], row) >= 0 {
			return fmt.Errorf("rows %d and %d out of order", i-1, i)
		}
		h := m.holders[row.HolderID]
		if h == nil || h.tokens[tok] == nil {
			return fmt.Errorf("row %+v not in model", row)
		}
		if want := h.tokens[tok].stat(row.HolderID, now); row != want {
			return fmt.Errorf("row %+v, want %+v", row, want)
		}
		in[row.HolderID] = true
	}
	var live []HolderStat
	for id, h := range m.holders {
		if p := h.tokens[tok]; p != nil && !retired[id] {
			live = append(live, p.stat(id, now))
		}
	}
	if len(rows) < min(n, len(live)) {
		return fmt.Errorf("%d rows, at least %d live pairs qualify", len(rows), min(n, len(live)))
	}
	for _, s := range live {
		switch {
		case in[s.HolderID]:
		case len(rows) < n:
			return fmt.Errorf("live %+v missing from a short result", s)
		case refOrder(s, rows[len(rows)-1]) < 0:
			return fmt.Errorf("live %+v outranks the last row but is missing", s)
		}
	}
	return nil
}
