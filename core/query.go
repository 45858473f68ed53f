package core

import (
	"cmp"
	"container/heap"
	"slices"
	"strings"
)

// The read path: one Query value selects what every front end asks for
// (the full ranking, the top n, one token, one holder, any window).

// Query selects rows of an aggregator at Now. The zero value of every other
// field means "none" or "all".
type Query struct {
	// Now is the time the scores are computed at (validated).
	Now int64
	// Window, when set, scores every holder's recorded holds clipped to it,
	// from history (ErrNoHistory without Options.History); the campaign
	// window does not apply then. Nil: the live totals.
	Window *Window
	// Token restricts rows to the (holder, Token) pairs; "" means every
	// token (one row per holder).
	Token string
	// Holder selects that one holder's row (or its pair with Token): at
	// most one row, found by one lookup, no scan. "" means every holder.
	Holder string
	// N > 0 returns the first N rows of the ranking (a bounded heap, no
	// full sort); 0 returns every row. Negative is an error.
	N int
	// Unordered returns every row (N 0) in no particular order, without
	// the ranking's sort: for a caller that sorts, sums or indexes them
	// itself. The rows are the ranked ones, bit for bit. With N > 0 the
	// rows are the first N of the ranking, in order, as without it.
	Unordered bool
}

// statLess is the ranking order: score descending, then holder_id ascending.
func statLess(x, y *HolderStat) int {
	if c := cmp.Compare(y.Score, x.Score); c != 0 {
		return c
	}
	return strings.Compare(x.HolderID, y.HolderID)
}

// exactLess is statLess for exact scores (their floats may tie).
func exactLess(x, y *HolderStat) int {
	if c := y.Exact.Cmp(x.Exact); c != 0 {
		return c
	}
	return strings.Compare(x.HolderID, y.HolderID)
}

// sortRows returns rows in the ranking order of v (rows itself may be
// reordered too). In float mode it sorts 16-byte (score, index) keys and
// then moves each 72-byte row once, instead of moving rows at every step of
// the sort; ids are compared only between equal scores. The comparators
// call statLess / exactLess directly: through a func value, &x and &y would
// escape and every comparison would allocate both rows on the heap (that
// was most of a ranked snapshot's time).
func (v view) sortRows(rows []HolderStat) []HolderStat {
	if v.exact {
		slices.SortFunc(rows, func(x, y HolderStat) int { return exactLess(&x, &y) })
		return rows
	}
	if len(rows) < 64 {
		slices.SortFunc(rows, func(x, y HolderStat) int { return statLess(&x, &y) })
		return rows
	}
	keys := make([]rankKey, len(rows))
	for i := range rows {
		keys[i] = rankKey{rows[i].Score, i}
	}
	slices.SortFunc(keys, func(x, y rankKey) int {
		if c := cmp.Compare(y.score, x.score); c != 0 {
			return c
		}
		return strings.Compare(rows[x.i].HolderID, rows[y.i].HolderID)
	})
	out := make([]HolderStat, len(rows))
	for j, k := range keys {
		out[j] = rows[k.i]
	}
	return out
}

// rankKey is a row's sort key in float mode: statLess on (score, rows[i]).
type rankKey struct {
	score float64
	i     int
}

func (q *Query) validate(a *Aggregator) (view, error) {
	if a.closed.Load() {
		return view{}, ErrClosed
	}
	if err := ValidateTime(-1, "now", q.Now); err != nil {
		return view{}, err
	}
	if q.N < 0 {
		return view{}, &ValidationError{-1, "n", itoa(q.N), ReasonOutOfRange, "must be >= 0"}
	}
	if q.Token != "" {
		if err := ValidateID(-1, "token_id", q.Token); err != nil {
			return view{}, err
		}
	}
	if q.Holder != "" {
		if err := ValidateID(-1, "holder_id", q.Holder); err != nil {
			return view{}, err
		}
	}
	v := view{now: q.Now, win: a.cfg.win, exact: a.cfg.exact}
	if q.Window != nil {
		if err := q.Window.Validate(); err != nil {
			return view{}, err
		}
		if !a.cfg.history {
			return view{}, ErrNoHistory
		}
		v.win, v.fromHistory = *q.Window, true
	}
	return v, nil
}

// Query returns the rows q selects, in ranking order (score descending,
// then holder_id ascending) unless q.Unordered. Ids are compared in
// canonical form (address.go).
func (a *Aggregator) Query(q Query) ([]HolderStat, error) {
	q.Token, q.Holder = CanonicalID(q.Token), CanonicalID(q.Holder)
	v, err := q.validate(a)
	if err != nil {
		return nil, err
	}
	row := func(h *holder) (HolderStat, bool) {
		if q.Token == "" {
			return h.stat(v), true
		}
		if ts := h.token(q.Token); ts != nil {
			return tokenStat(h.id, ts, v), true
		}
		return HolderStat{}, false
	}
	if q.Holder != "" {
		sh, hash := a.shardOf(q.Holder)
		sh.mu.Lock()
		defer sh.mu.Unlock()
		if h := sh.get(hash, q.Holder); h != nil {
			if st, ok := row(h); ok {
				return []HolderStat{st}, nil
			}
		}
		return []HolderStat{}, nil
	}
	if q.N > 0 {
		top := topHeap{rows: make([]HolderStat, 0, min(q.N, 1<<16)), n: q.N, exact: v.exact}
		a.each(func(h *holder) {
			if st, ok := row(h); ok {
				top.offer(st)
			}
		})
		return v.sortRows(top.rows), nil
	}
	rows := make([]HolderStat, 0, a.Len())
	a.each(func(h *holder) {
		if st, ok := row(h); ok {
			rows = append(rows, st)
		}
	})
	if !q.Unordered {
		rows = v.sortRows(rows)
	}
	return rows, nil
}

// each calls f for every holder, one shard at a time under its lock.
func (a *Aggregator) each(f func(*holder)) {
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		sh.live(f)
		sh.mu.Unlock()
	}
}

// topHeap keeps the best n rows seen so far. The root is the worst kept row,
// so a new row either loses to it (O(1)) or replaces it (O(log n)).
//
// It calls statLess / exactLess directly, not through a func value: through
// one, the offered row would escape and every offer (one per holder) would
// allocate it on the heap.
type topHeap struct {
	rows  []HolderStat
	n     int
	exact bool // the ranking order: exactLess, else statLess
}

func (t *topHeap) less(x, y *HolderStat) int {
	if t.exact {
		return exactLess(x, y)
	}
	return statLess(x, y)
}

func (t *topHeap) Len() int           { return len(t.rows) }
func (t *topHeap) Less(i, j int) bool { return t.less(&t.rows[i], &t.rows[j]) > 0 } // worst first
func (t *topHeap) Swap(i, j int)      { t.rows[i], t.rows[j] = t.rows[j], t.rows[i] }
func (t *topHeap) Push(x any)         { t.rows = append(t.rows, x.(HolderStat)) }
func (t *topHeap) Pop() any {
	last := t.rows[len(t.rows)-1]
	t.rows = t.rows[:len(t.rows)-1]
	return last
}

func (t *topHeap) offer(s HolderStat) {
	if len(t.rows) < t.n {
		heap.Push(t, s)
		return
	}
	if t.less(&s, &t.rows[0]) < 0 {
		t.rows[0] = s
		heap.Fix(t, 0)
	}
}
