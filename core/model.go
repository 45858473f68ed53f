package core

import (
	"math"

	"github.com/holiman/uint256"
)

// The per-holder state and how a row is computed from it. Every method here
// runs with the holder's shard lock held.
//
// A hold is in one of two places:
//   - credited: its score is in the pair's closed Neumaier sum (and its
//     seconds in seconds). A hold is credited once it has an end that is not
//     after the write's now (the time it was recorded, or a later write's);
//   - live: an open hold (end noEnd), or a closed hold whose end is still
//     ahead of the last write's now. A live hold is scored when read, up to
//     the query's now, exactly like the batch score counts it; the next
//     write to the pair at or after its end credits it (fold).
//
// So a row agrees with Score(the holder's events, now) for every now at or
// after the holders' last write, and not only once now passes every end.

// noEnd is a live hold's end while it is open: min(now, noEnd) == now.
const noEnd = math.MaxInt64

// holder is 120 bytes (a 128-byte, cache-line-aligned allocation): most
// holders hold one token, kept inline. Fields are ordered so that recording
// a closed hold for the first token writes only the first cache line
// (updated and the head of first); the second holds what is read (id) or
// rarely written. When two cores record for the same holders, one line per
// event moves between them instead of two.
type holder struct {
	updated int64
	first   tokenState
	more    *[]tokenState // tokens after the first; nil for most holders
	id      string        // owned copy of holder_id
}

// tokenState is the state of one (holder, token) pair; the fields every
// recorded event writes come first (see holder).
type tokenState struct {
	closed  neumaier
	seconds int64
	events  int64
	updated int64
	token   string      // interned
	live    []liveHold  // open holds, and closed ones whose end is ahead; in recording order
	hist    *[]interval // closed holds, only with Options.History
	ex      *exactPair  // exact mode only
}

// exactPair is a pair's exact-mode state: its credited score, and the exact
// weights of its live holds and of its history, index for index with
// tokenState.live and hist (their float weights are unused in exact mode).
// Kept apart so that float mode's state stays as small as it was.
type exactPair struct {
	closed Int
	live   []uint256.Int
	hist   []uint256.Int
}

// interval is one closed hold, kept raw (unclipped) for window queries.
type interval struct {
	start, end int64
	weight     float64
}

// liveHold is a hold scored when read: end is noEnd while it is open.
type liveHold struct {
	start, end int64
	weight     float64
}

func (l *liveHold) isOpen() bool { return l.end == noEnd }

// get returns the holder with this id (and its xxhash), or nil.
func (sh *shard) get(hash uint64, id string) *holder { return sh.holders.get(hash, id) }

// put adds a holder that get does not find.
func (sh *shard) put(hash uint64, h *holder) { sh.holders.put(hash, h) }

// holderSlab is how many holders one allocation holds: 4 KiB, so holders
// stay 128-byte aligned, and a cold ingest makes one allocation per 32 new
// holders instead of one each.
const holderSlab = 32

// newHolder returns a fresh holder for id (not yet put): a dropped one's
// memory, or the next of the shard's slab.
func (sh *shard) newHolder(id string) *holder {
	var h *holder
	if n := len(sh.free); n > 0 {
		h, sh.free = sh.free[n-1], sh.free[:n-1]
	} else {
		if len(sh.slab) == 0 {
			sh.slab = make([]holder, holderSlab)
			sh.slabs = append(sh.slabs, sh.slab)
		}
		h, sh.slab = &sh.slab[0], sh.slab[1:]
	}
	h.id = sh.tokens.cloneID(id)
	return h
}

// create adds a holder for id, which get does not find under hash.
func (sh *shard) create(hash uint64, id string) *holder {
	h := sh.newHolder(id)
	sh.put(hash, h)
	return h
}

// drop removes h, stored under hash, and keeps its memory for newHolder:
// a shard's holders take the memory of its peak count until it is empty
// (then GC lets the slabs go). No pointer to a holder outlives the shard
// lock, so reusing one is safe.
func (sh *shard) drop(hash uint64, h *holder) {
	sh.holders.del(hash, h)
	n := len(h.id)
	*h = holder{}
	sh.free = append(sh.free, h)
	if sh.tokens.releaseID(n) {
		// Copy the live ids out of the chunks that are mostly dead ones
		// (see internTable); h, zeroed, is skipped.
		t := &sh.tokens
		t.ids, t.idLive, t.idDead = nil, 0, 0
		sh.live(func(h *holder) { h.id = t.cloneID(h.id) })
	}
}

// forget lets go of everything an empty shard still keeps: its token and
// holder id copies and its holders' memory.
func (sh *shard) forget() {
	sh.tokens = internTable{}
	sh.slab, sh.slabs, sh.free = nil, nil, nil
}

// all calls f for every holder (f may del the holder it is given).
func (sh *shard) all(f func(*holder)) { sh.holders.all(f) }

// live calls f for every holder in memory order (slab by slab), which a
// read of every holder walks far faster than the table's hash order once
// the holders outgrow the caches. f must not add or drop holders.
func (sh *shard) live(f func(*holder)) {
	for _, slab := range sh.slabs {
		for i := range slab {
			if h := &slab[i]; h.id != "" { // "": not handed out yet, or dropped
				f(h)
			}
		}
	}
}

func (sh *shard) intern(token string) string { return sh.tokens.get(token) }

func (h *holder) token(id string) *tokenState {
	if h.first.token == id {
		return &h.first
	}
	if h.more != nil {
		more := *h.more
		for i := range more {
			if more[i].token == id {
				return &more[i]
			}
		}
	}
	return nil
}

func (h *holder) addToken(id string) *tokenState {
	if h.first.token == "" {
		h.first.token = id
		return &h.first
	}
	if h.more == nil {
		h.more = new([]tokenState)
	}
	*h.more = append(*h.more, tokenState{token: id})
	return &(*h.more)[len(*h.more)-1]
}

// each calls f for every token state of h.
func (h *holder) each(f func(*tokenState)) {
	f(&h.first)
	if h.more != nil {
		more := *h.more
		for i := range more {
			f(&more[i])
		}
	}
}

// holding reports whether any pair of h has a live hold (after folding at
// now): such a holder is never dropped by GC.
func (h *holder) holding(cfg *config, now int64) bool {
	live := false
	h.each(func(ts *tokenState) {
		ts.fold(cfg, now)
		live = live || len(ts.live) > 0
	})
	return live
}

// finish gives a hold its end at a write's now: it is observed (metrics),
// remembered in history, and credited now or, if end is still ahead, kept
// live until a later write folds it. wx is the exact weight (exact mode).
func (ts *tokenState) finish(cfg *config, sh *shard, now, start, end int64, w float64, wx *uint256.Int) {
	d := cfg.win.held(start, end, true, MaxTime)
	if cfg.exact {
		var x Int
		x.addMul(wx, uint64(d))
		sh.stats.observe(d, x.Float())
	} else {
		sh.stats.observe(d, float64(d)*w)
	}
	if cfg.history {
		if ts.hist == nil {
			ts.hist = new([]interval)
		}
		*ts.hist = append(*ts.hist, interval{start, end, w})
		if cfg.exact {
			ts.exact().hist = append(ts.ex.hist, *wx)
		}
	}
	if end <= now {
		ts.credit(cfg, start, end, w, wx)
	} else {
		ts.appendLive(cfg, liveHold{start, end, w}, wx)
	}
}

// exact is the pair's exact state, created on first use.
func (ts *tokenState) exact() *exactPair {
	if ts.ex == nil {
		ts.ex = new(exactPair)
	}
	return ts.ex
}

// appendLive adds a live hold (and, in exact mode, its exact weight).
func (ts *tokenState) appendLive(cfg *config, l liveHold, wx *uint256.Int) {
	ts.live = append(ts.live, l)
	if cfg.exact {
		ts.exact().live = append(ts.ex.live, *wx)
	}
}

// credit adds a closed hold to the pair's sums, clipped to the campaign
// window (in full otherwise: not clipped at any now).
func (ts *tokenState) credit(cfg *config, start, end int64, w float64, wx *uint256.Int) {
	d := cfg.win.held(start, end, true, MaxTime)
	if cfg.exact {
		ts.exact().closed.addMul(wx, uint64(d))
	} else {
		ts.closed.addNonNeg(float64(d) * w)
	}
	ts.seconds += d
}

// liveWeight is live hold i's exact weight (exact mode), nil otherwise.
func (ts *tokenState) liveWeight(i int) *uint256.Int {
	if ts.ex == nil {
		return nil
	}
	return &ts.ex.live[i]
}

// fold credits the live holds whose end is not after now, keeping the order
// of the rest.
func (ts *tokenState) fold(cfg *config, now int64) {
	due := false
	for i := range ts.live {
		if l := &ts.live[i]; !l.isOpen() && l.end <= now {
			due = true
			break
		}
	}
	if !due {
		return
	}
	kept, k := ts.live[:0], 0
	for i, l := range ts.live {
		if !l.isOpen() && l.end <= now {
			ts.credit(cfg, l.start, l.end, l.weight, ts.liveWeight(i))
			continue
		}
		kept = append(kept, l)
		if ts.ex != nil {
			ts.ex.live[k] = ts.ex.live[i]
		}
		k++
	}
	clear(ts.live[len(kept):])
	ts.live = kept
	if ts.ex != nil {
		ts.ex.live = ts.ex.live[:k]
	}
	if len(ts.live) == 0 {
		ts.live = nil
	}
}

func (ts *tokenState) openHolds() int64 {
	n := int64(0)
	for i := range ts.live {
		if ts.live[i].isOpen() {
			n++
		}
	}
	return n
}

// view says how rows are computed: the live totals (credited sums plus live
// holds up to now, in the campaign window), or, from history, exactly the
// batch score of the recorded holds in an arbitrary window at now.
type view struct {
	now         int64
	win         Window
	fromHistory bool
	exact       bool
}

// stat adds one token state's score at v to acc (float mode) or x (exact
// mode) and returns its seconds.
func (ts *tokenState) stat(v view, acc *neumaier, x *Int) (seconds int64) {
	ex := ts.ex
	if v.fromHistory {
		if ts.hist != nil {
			for i, iv := range *ts.hist {
				d := v.win.held(iv.start, iv.end, true, v.now)
				if x != nil {
					x.addMul(&ex.hist[i], uint64(d))
				} else {
					acc.addNonNeg(float64(d) * iv.weight)
				}
				seconds += d
			}
		}
	} else {
		if x != nil {
			if ex != nil {
				x.add(&ex.closed)
			}
		} else {
			acc.add(ts.closed.sum)
			acc.add(ts.closed.comp)
		}
		seconds = ts.seconds
	}
	for i := range ts.live {
		l := &ts.live[i]
		if v.fromHistory && !l.isOpen() {
			continue // a closed hold is in history already
		}
		d := v.win.held(l.start, l.end, true, v.now)
		if x != nil {
			x.addMul(&ex.live[i], uint64(d))
		} else {
			acc.add(float64(d) * l.weight)
		}
		seconds += d
	}
	return seconds
}

// score fills st's Score (and Exact, in exact mode) from the sums.
func (v view) score(st *HolderStat, acc *neumaier, x *Int) {
	if x != nil {
		st.Exact = x
		st.Score = x.Float()
		return
	}
	st.Score = acc.value()
}

// exactAcc is a fresh exact accumulator in exact mode, nil in float mode.
func (v view) exactAcc() *Int {
	if v.exact {
		return new(Int)
	}
	return nil
}

func (h *holder) stat(v view) HolderStat {
	var acc neumaier
	x := v.exactAcc()
	st := HolderStat{HolderID: h.id, UpdatedAt: h.updated}
	h.each(func(ts *tokenState) {
		st.TotalSeconds += ts.stat(v, &acc, x)
		st.Events += ts.events
		st.OpenHolds += ts.openHolds()
		st.Tokens++
	})
	v.score(&st, &acc, x)
	return st
}

func tokenStat(id string, ts *tokenState, v view) HolderStat {
	var acc neumaier
	x := v.exactAcc()
	st := HolderStat{HolderID: id, UpdatedAt: ts.updated, Events: ts.events,
		OpenHolds: ts.openHolds(), Tokens: 1}
	st.TotalSeconds = ts.stat(v, &acc, x)
	v.score(&st, &acc, x)
	return st
}
