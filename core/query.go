package core

import (
	"cmp"
	"container/heap"
	"math"
	"slices"
	"strings"
	"sync/atomic"
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
// reordered too). In float mode it does not compare rows: it radix-sorts
// 16-byte (key, index) pairs, the key a uint64 whose order is the ranking's
// score order (rankOf), sorts only the runs of equal scores by id, and then
// moves each 72-byte row once, in place (following the permutation's
// cycles). A comparison sort of the keys through slices.SortFunc (a call
// per comparison) was most of a ranked snapshot of 20,000 holders; the
// rows' own sort, before that, allocated both rows at every comparison.
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
		keys[i] = rankKey{rankOf(rows[i].Score), int32(i)}
	}
	keys = rankSort(keys, func(i int32) string { return rows[i].HolderID })
	// rows[j] becomes the old rows[keys[j].i]: each cycle of the permutation
	// is walked once, and a done position is marked with index -1.
	for j := range keys {
		if keys[j].i < 0 {
			continue
		}
		first, k := rows[j], j
		for {
			src := int(keys[k].i)
			keys[k].i = -1
			if src == j {
				rows[k] = first
				break
			}
			rows[k] = rows[src]
			k = src
		}
	}
	return rows
}

// rankSort puts keys (rankOf of each row's score, and the row) in ranking
// order: by key, and equal keys (equal scores: -0 and +0 alike, NaN and NaN
// alike) by the rows' ids. It returns the sorted slice (keys or its scratch).
//
// A run of equal keys copies its ids into one buffer before sorting them: the
// rows are in no order in memory, so each id is a cache miss, paid once per
// row this way instead of at every comparison (a snapshot whose scores tie
// often spent most of its ranking there).
func rankSort(keys []rankKey, id func(row int32) string) []rankKey {
	keys = radixSort(keys, make([]rankKey, len(keys)))
	var (
		buf  []byte
		ends []int
		pos  []int32
		run  []rankKey
	)
	for lo := 0; lo < len(keys); {
		hi := lo + 1
		for hi < len(keys) && keys[hi].key == keys[lo].key {
			hi++
		}
		if hi-lo > 1 {
			buf, ends, pos = buf[:0], ends[:0], pos[:0]
			for p, k := range keys[lo:hi] {
				buf = append(buf, id(k.i)...)
				ends = append(ends, len(buf))
				pos = append(pos, int32(p))
			}
			str := func(p int32) string {
				from := 0
				if p > 0 {
					from = ends[p-1]
				}
				return unsafeString(buf[from:ends[p]])
			}
			slices.SortFunc(pos, func(x, y int32) int { return strings.Compare(str(x), str(y)) })
			run = append(run[:0], keys[lo:hi]...)
			for j, p := range pos {
				keys[lo+j] = run[p]
			}
		}
		lo = hi
	}
	return keys
}

// rankKey is a row's sort key in float mode: rankOf(score) and the row.
type rankKey struct {
	key uint64
	i   int32
}

// rankOf maps a score to a uint64 whose ascending order is statLess's
// score order: higher scores first, -0 equal to +0, NaN after everything
// (cmp.Compare orders NaN below every number, so it ranks last).
func rankOf(s float64) uint64 {
	if s != s {
		return math.MaxUint64
	}
	if s == 0 {
		s = 0 // -0 ranks with +0
	}
	b := math.Float64bits(s)
	if b>>63 == 0 {
		return ^b &^ (1 << 63) // s >= 0: a higher score, a smaller key, below 2^63
	}
	return b // s < 0: a lower score (more negative), a larger key, from 2^63
}

// radixSort sorts keys by key, stably (least significant byte first); tmp
// is scratch of the same length. It returns the sorted slice (keys or tmp).
// A byte that every key shares costs no pass: scores of one magnitude share
// their top bytes.
func radixSort(keys, tmp []rankKey) []rankKey {
	var counts [8][256]int
	for _, k := range keys {
		for b := range 8 {
			counts[b][byte(k.key>>(8*b))]++
		}
	}
	for b := range 8 {
		c := &counts[b]
		if c[byte(keys[0].key>>(8*b))] == len(keys) {
			continue
		}
		sum := 0
		for d := range c {
			c[d], sum = sum, sum+c[d]
		}
		for _, k := range keys {
			d := byte(k.key >> (8 * b))
			tmp[c[d]] = k
			c[d]++
		}
		keys, tmp = tmp, keys
	}
	return keys
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
	if q.Token == "" {
		a.eachGroup(func(group []holder) {
			for k := range group {
				if h := &group[k]; h.id != "" {
					rows = append(rows, h.stat(v))
				}
			}
		})
	} else {
		a.each(func(h *holder) {
			if st, ok := row(h); ok {
				rows = append(rows, st)
			}
		})
	}
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

// eachGroup calls f for every shard's holders in memory order, touchAhead
// holders at a time (slab slots: f skips the empty ones, id ""), each group
// touched first (touchHolders), with the shard's lock held. f is called per
// group, not per holder, so that the row code inside it inlines (through a
// func value per holder, as a.each does, the calls were a fifth of an
// unordered snapshot).
func (a *Aggregator) eachGroup(f func(group []holder)) {
	var touched uintptr
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		for _, slab := range sh.slabs {
			for j := 0; j < len(slab); j += touchAhead {
				group := slab[j:min(j+touchAhead, len(slab))]
				touched += touchHolders(group)
				f(group)
			}
		}
		sh.mu.Unlock()
	}
	touchSink.Add(touched)
}

// touchAhead is how many holders touchHolders loads ahead of their stats.
const touchAhead = 16

// touchSink keeps touchHolders' loads alive: a walk adds up what they
// read and adds that here once (atomically: queries run concurrently).
var touchSink atomic.Uintptr

// touchHolders loads the out-of-line parts of a group of holders (the token
// list, its pairs, their live holds) one level at a time across the group,
// before the stats read them: the loads of different holders are
// independent, so their cache misses overlap instead of queueing one after
// another along each holder's pointer chain.
func touchHolders(group []holder) uintptr {
	var sum uintptr
	for k := range group {
		h := &group[k]
		if h.more != nil {
			sum += uintptr(len(*h.more))
		}
		if len(h.first.live) > 0 {
			sum += uintptr(h.first.live[0].start)
		}
	}
	for k := range group {
		if h := &group[k]; h.more != nil {
			for _, ts := range *h.more {
				sum += uintptr(len(ts.live))
			}
		}
	}
	for k := range group {
		if h := &group[k]; h.more != nil {
			more := *h.more
			for i := range more {
				if len(more[i].live) > 0 {
					sum += uintptr(more[i].live[0].start)
				}
			}
		}
	}
	return sum
}
