package core

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Locking: the Aggregator's state is split into shards chosen by the xxhash
// of holder_id; each shard has one mutex that guards its holders, its token
// intern table and its metric counters. A batch is grouped by shard first and
// each shard's lock is taken once per batch (per-event locking does not scale
// on two cores). No operation holds two shard locks at once, so there is no
// lock order to get wrong. Reads (Snapshot, TopN) visit the shards one after
// another: each holder's row is consistent, the whole is not a point-in-time
// cut across shards. a.mu guards only the lifecycle (closed flag, GC loop).

// ErrClosed is returned by every method of an Aggregator after Close.
var ErrClosed = errors.New("aggregator is closed")

// ErrNoOpenHold is returned by CloseHold when the pair has no open hold.
var ErrNoOpenHold = errors.New("no open hold")

// Options configures New. The zero value is valid.
type Options struct {
	// Shards is the number of shards, rounded up to a power of two
	// (default 64).
	Shards int
	// TTL drops, on GC, a holder idle for longer than TTL that has no open
	// hold. Zero keeps every holder forever. Whole seconds are used.
	TTL time.Duration
	// Registerer receives the aggregator's collectors. Nil means the
	// aggregator creates and owns a fresh registry (see Gatherer). It is
	// never prometheus.DefaultRegisterer unless the caller passes it.
	Registerer prometheus.Registerer
	// ConstLabels are added to every metric, e.g. to tell two aggregators
	// registered on one registry apart. Never put holder or token ids here.
	ConstLabels prometheus.Labels
	// Clock returns the current Unix time in seconds; it stamps updated_at
	// for Record and CloseHold. Default: the wall clock.
	Clock func() int64
	// Window, when set, is a campaign window fixed for the aggregator's
	// life: every hold is clipped to it when it is recorded (O(1) per event)
	// and open holds are clipped when read.
	Window *Window
	// History keeps every closed hold (start, end, weight: 24 bytes per
	// event, plus slice growth) so that SnapshotWindow and TopNWindow can
	// answer for any window. Off by default to keep memory bounded.
	History bool
}

// HolderStat is one holder's row in a snapshot or ranking. With a token
// filter (TopN), the fields describe that one (holder, token) pair.
type HolderStat struct {
	HolderID     string
	Score        float64 // closed score + open holds up to now
	TotalSeconds int64   // closed seconds + open seconds up to now (unweighted)
	Events       int64   // events recorded
	OpenHolds    int64   // holds without an end
	Tokens       int     // distinct tokens held (1 with a token filter)
	UpdatedAt    int64   // clock time of the last record / close
}

// Aggregator accumulates hold scores per holder and per (holder, token).
// It is safe for concurrent use by any number of goroutines.
type Aggregator struct {
	shards  []shard
	mask    uint64
	cfg     config
	ttl     int64
	clock   func() int64
	metrics *collector
	reg     prometheus.Registerer
	gather  prometheus.Gatherer

	closed atomic.Bool
	rotor  atomic.Uint64 // spreads concurrent batches over the shards
	mu     sync.Mutex    // lifecycle only
	stopGC chan struct{}
	gcDone chan struct{}

	scratch sync.Pool // *batchScratch
}

// config is what the record path needs to know, fixed at New.
type config struct {
	win     Window // campaign window; All when none
	history bool
}

// ErrNoHistory is returned by window queries on an aggregator without History.
var ErrNoHistory = errors.New("window queries need an aggregator created with History")

type shard struct {
	mu      sync.Mutex
	holders holderTable       // keyed by the xxhash of the holder id (see holderTable)
	tokens  map[string]string // interned token ids: one copy per shard
	open    int64             // open holds in this shard
	stats   shardStats        // metric counters, guarded by mu
	_       [64]byte          // keep neighbouring shard locks off one cache line
}

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
	token   string // interned
	open    []openHold
	hist    *[]interval // closed holds, only with Options.History
}

// interval is one closed hold, kept raw (unclipped) for window queries.
type interval struct {
	start, end int64
	weight     float64
}

type openHold struct {
	start  int64
	weight float64
}

// New returns an empty Aggregator. It starts no goroutine.
func New(opts Options) (*Aggregator, error) {
	n := 64
	if opts.Shards > 0 {
		n = 1
		for n < opts.Shards {
			n <<= 1
		}
	}
	if opts.TTL < 0 {
		return nil, fmt.Errorf("core.New: ttl %v must be >= 0", opts.TTL)
	}
	cfg := config{win: All, history: opts.History}
	if opts.Window != nil {
		if err := opts.Window.Validate(); err != nil {
			return nil, fmt.Errorf("core.New: %w", err)
		}
		cfg.win = *opts.Window
	}
	a := &Aggregator{
		cfg:    cfg,
		shards: make([]shard, n),
		mask:   uint64(n - 1),
		ttl:    int64(opts.TTL / time.Second),
		clock:  opts.Clock,
	}
	if opts.TTL > 0 && a.ttl == 0 {
		a.ttl = 1
	}
	if a.clock == nil {
		a.clock = func() int64 { return time.Now().Unix() }
	}
	for i := range a.shards {
		a.shards[i].tokens = make(map[string]string)
	}
	a.metrics = newCollector(a, opts.ConstLabels)
	a.reg = opts.Registerer
	if a.reg == nil {
		r := prometheus.NewRegistry()
		a.reg, a.gather = r, r
	} else if g, ok := a.reg.(prometheus.Gatherer); ok {
		a.gather = g
	}
	if err := a.reg.Register(a.metrics); err != nil {
		return nil, fmt.Errorf("core.New: registering metrics: %w", err)
	}
	return a, nil
}

// Gatherer is the registry the aggregator's metrics can be read from: its own
// registry, or the caller's Registerer when that is also a Gatherer (as a
// *prometheus.Registry is). Nil otherwise.
func (a *Aggregator) Gatherer() prometheus.Gatherer { return a.gather }

// Now is the aggregator's clock.
func (a *Aggregator) Now() int64 { return a.clock() }

func (a *Aggregator) shardOf(holderID string) (*shard, uint64) {
	hash := xxhash.Sum64String(holderID)
	return &a.shards[hash&a.mask], hash
}

// get returns the holder with this id (and its xxhash), or nil. Caller holds mu.
func (sh *shard) get(hash uint64, id string) *holder { return sh.holders.get(hash, id) }

// put adds a holder that get does not find. Caller holds mu.
func (sh *shard) put(hash uint64, h *holder) { sh.holders.put(hash, h) }

// del removes h, stored under hash. Caller holds mu.
func (sh *shard) del(hash uint64, h *holder) { sh.holders.del(hash, h) }

// count is the number of holders. Caller holds mu.
func (sh *shard) count() int { return sh.holders.n }

// all calls f for every holder (f may del the holder it is given). Caller
// holds mu.
func (sh *shard) all(f func(*holder)) { sh.holders.all(f) }

type batchScratch struct {
	hash    []uint64 // xxhash of each event's holder_id
	shardOf []uint32
	order   []int32
	counts  []int32
}

// Record adds a batch all-or-nothing: if any event is invalid, nothing is
// recorded and the first invalid event's *ValidationError is returned.
func (a *Aggregator) Record(events ...HoldEvent) error {
	_, err := a.RecordAt(a.clock(), events, false)
	return err
}

// RecordAt records a batch with updated_at = now. In strict mode (partial ==
// false) an invalid event rejects the whole batch: nothing changes and the
// error is that event's *ValidationError. In partial mode the valid events
// are recorded and the error, if any, is a *BatchError listing the rest. It
// returns how many events were recorded.
func (a *Aggregator) RecordAt(now int64, events []HoldEvent, partial bool) (int, error) {
	if a.closed.Load() {
		return 0, ErrClosed
	}
	if err := ValidateTime(-1, "now", now); err != nil {
		return 0, err
	}
	// Validate everything first: a strict batch is all-or-nothing.
	var bad []*ValidationError
	for i := range events {
		e := &events[i]
		if !e.valid() {
			err := e.Validate(i) // the slow path says exactly what is wrong
			if !partial {
				a.metrics.rejected.Add(uint64(len(events)))
				return 0, err
			}
			bad = append(bad, err)
		}
	}
	a.metrics.rejected.Add(uint64(len(bad)))
	accepted := len(events) - len(bad)
	if accepted > 0 {
		sc, _ := a.scratch.Get().(*batchScratch)
		if sc == nil {
			sc = &batchScratch{counts: make([]int32, len(a.shards)+1)}
		}
		skip := bad
		for lo := 0; lo < len(events); lo += applyChunk {
			hi := min(lo+applyChunk, len(events))
			skip = a.apply(now, events[lo:hi], lo, skip, sc)
		}
		a.scratch.Put(sc)
	}
	if accepted < len(events) {
		return accepted, &BatchError{Errors: bad}
	}
	return accepted, nil
}

// applyChunk is how many events apply takes at a time: a chunk's events
// (64 bytes each) and scratch stay in L2 between hashing them in order and
// gathering them shard by shard, and each shard lock is still taken only
// once per a few dozen of its events.
const applyChunk = 2048

// apply records one chunk of a validated batch; base is the chunk's offset
// in the batch and bad the batch's remaining invalid events (partial mode),
// in index order: those are skipped. It returns the invalid events after the
// chunk.
//
// The chunk is grouped by shard (a stable counting sort, so each shard sees
// its events in input order) and each shard's lock is taken once.
func (a *Aggregator) apply(now int64, events []HoldEvent, base int, bad []*ValidationError, sc *batchScratch) []*ValidationError {
	n := len(events)
	sc.shardOf = slices.Grow(sc.shardOf[:0], n)[:n]
	sc.hash = slices.Grow(sc.hash[:0], n)[:n]
	sc.order = slices.Grow(sc.order[:0], n)[:n]
	invalid := uint32(len(a.shards)) // an extra last "shard", never applied
	counts := sc.counts
	clear(counts)
	hashes, shardOf := sc.hash[:n], sc.shardOf[:n]
	for i := range events {
		s := invalid
		if len(bad) > 0 && bad[0].Index == base+i {
			bad = bad[1:]
		} else {
			hash := xxhash.Sum64String(events[i].HolderID)
			hashes[i] = hash
			s = uint32(hash & a.mask)
		}
		shardOf[i] = s
		counts[s]++
	}
	// counts -> start offsets
	sum := int32(0)
	for i, c := range counts {
		counts[i] = sum
		sum += c
	}
	for i, s := range sc.shardOf {
		sc.order[counts[s]] = int32(i)
		counts[s]++
	}
	// counts[si] is now the end of shard si's run. Concurrent batches start
	// at different shards so that they do not queue behind each other on
	// the same lock sequence.
	first := int(a.rotor.Add(1)*7) & int(a.mask)
	for k := range a.shards {
		si := (first + k) & int(a.mask)
		lo, hi := int32(0), counts[si]
		if si > 0 {
			lo = counts[si-1]
		}
		if hi == lo {
			continue
		}
		sh := &a.shards[si]
		sh.mu.Lock()
		sh.addRun(&a.cfg, now, events, sc.hash, sc.order[lo:hi])
		sh.mu.Unlock()
	}
	return bad
}

// lookahead is how many holder lookups addRun issues before using any result.
const lookahead = 8

// addRun applies the events at order (all of this shard). Caller holds sh.mu.
//
// With many holders the table and the holders outgrow the CPU caches and each
// event costs a few memory misses. Looking up a group of holders before
// touching any of them lets those misses overlap (memory-level parallelism)
// instead of paying them one after another.
func (sh *shard) addRun(cfg *config, now int64, events []HoldEvent, hashes []uint64, order []int32) {
	var found [lookahead]*holder
	for len(order) > 0 {
		group := order[:min(len(order), lookahead)]
		order = order[len(group):]
		for k, ix := range group {
			found[k] = sh.get(hashes[ix], events[ix].HolderID)
		}
		for k, ix := range group {
			sh.add(cfg, now, &events[ix], hashes[ix], found[k])
		}
	}
}

// add applies one valid event; h is its holder if a lookup found it (nil
// may also mean "created by an earlier event of the same group"). Caller
// holds sh.mu.
func (sh *shard) add(cfg *config, now int64, e *HoldEvent, hash uint64, h *holder) {
	if h == nil {
		if h = sh.get(hash, e.HolderID); h == nil {
			h = &holder{id: strings.Clone(e.HolderID)}
			sh.put(hash, h)
		}
	}
	ts := h.token(e.TokenID)
	if ts == nil {
		ts = h.addToken(sh.intern(e.TokenID))
	}
	if e.HasEnd {
		ts.closeOne(cfg, sh, e.Start, e.End, e.Weight)
	} else {
		ts.open = append(ts.open, openHold{e.Start, e.Weight})
		sh.open++
	}
	ts.events++
	ts.updated = now
	h.updated = now
	sh.stats.accepted++
}

func (sh *shard) intern(token string) string {
	if t, ok := sh.tokens[token]; ok {
		return t
	}
	t := strings.Clone(token)
	sh.tokens[t] = t
	return t
}

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

// closeOne credits a closed hold: in full (not clipped at any now), clipped
// to the campaign window, and remembered when History is on.
func (ts *tokenState) closeOne(cfg *config, sh *shard, start, end int64, w float64) {
	d := cfg.win.held(start, end, true, MaxTime)
	score := float64(d) * w
	ts.closed.addNonNeg(score)
	ts.seconds += d
	sh.stats.observe(d, score)
	if cfg.history {
		if ts.hist == nil {
			ts.hist = new([]interval)
		}
		*ts.hist = append(*ts.hist, interval{start, end, w})
	}
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

func (h *holder) openHolds() int64 {
	n := int64(len(h.first.open))
	if h.more != nil {
		for _, ts := range *h.more {
			n += int64(len(ts.open))
		}
	}
	return n
}

// view says how rows are computed: the live totals (closed credit plus open
// holds up to now, in the campaign window), or, from history, exactly the
// batch score of the recorded holds in an arbitrary window at now.
type view struct {
	now         int64
	win         Window
	fromHistory bool
}

// stat adds one token state's score at v to acc and returns its seconds.
func (ts *tokenState) stat(v view, acc *neumaier) (seconds int64) {
	if v.fromHistory {
		if ts.hist != nil {
			for _, iv := range *ts.hist {
				d := v.win.held(iv.start, iv.end, true, v.now)
				acc.addNonNeg(float64(d) * iv.weight)
				seconds += d
			}
		}
	} else {
		acc.add(ts.closed.sum)
		acc.add(ts.closed.comp)
		seconds = ts.seconds
	}
	for _, o := range ts.open {
		d := v.win.held(o.start, 0, false, v.now)
		acc.add(float64(d) * o.weight)
		seconds += d
	}
	return seconds
}

func (h *holder) stat(v view) HolderStat {
	var acc neumaier
	st := HolderStat{HolderID: h.id, UpdatedAt: h.updated}
	h.each(func(ts *tokenState) {
		st.TotalSeconds += ts.stat(v, &acc)
		st.Events += ts.events
		st.OpenHolds += int64(len(ts.open))
		st.Tokens++
	})
	st.Score = acc.value()
	return st
}

func tokenStat(id string, ts *tokenState, v view) HolderStat {
	var acc neumaier
	st := HolderStat{HolderID: id, UpdatedAt: ts.updated, Events: ts.events,
		OpenHolds: int64(len(ts.open)), Tokens: 1}
	st.TotalSeconds = ts.stat(v, &acc)
	st.Score = acc.value()
	return st
}

// CloseHold ends every open hold of (token, holder) at time at, crediting
// max(0, at − start) × weight for each, and returns how many it closed.
// ErrNoOpenHold (wrapped) if there is none; a *ValidationError if at is out of
// range or before the start of one of the holds (then nothing changes).
func (a *Aggregator) CloseHold(token, holder string, at int64) (int, error) {
	return a.CloseHoldAt(a.clock(), token, holder, at)
}

// CloseHoldAt is CloseHold with updated_at = now.
func (a *Aggregator) CloseHoldAt(now int64, token, holderID string, at int64) (int, error) {
	if a.closed.Load() {
		return 0, ErrClosed
	}
	for _, err := range []*ValidationError{
		ValidateID(-1, "token_id", token), ValidateID(-1, "holder_id", holderID),
		ValidateTime(-1, "at", at), ValidateTime(-1, "now", now),
	} {
		if err != nil {
			return 0, err
		}
	}
	sh, hash := a.shardOf(holderID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	h := sh.get(hash, holderID)
	var ts *tokenState
	if h != nil {
		ts = h.token(token)
	}
	if ts == nil || len(ts.open) == 0 {
		return 0, fmt.Errorf("close %s/%s: %w", quoteID(token), quoteID(holderID), ErrNoOpenHold)
	}
	for _, o := range ts.open {
		if at < o.start {
			return 0, &ValidationError{-1, "at", itoa64(at), ReasonEndBeforeStart,
				fmt.Sprintf("is before start %d of an open hold", o.start)}
		}
	}
	n := len(ts.open)
	for _, o := range ts.open {
		ts.closeOne(&a.cfg, sh, o.start, at, o.weight)
	}
	ts.open = nil
	sh.open -= int64(n)
	ts.updated, h.updated = now, now
	return n, nil
}

func statLess(x, y *HolderStat) int {
	if c := cmp.Compare(y.Score, x.Score); c != 0 {
		return c
	}
	return strings.Compare(x.HolderID, y.HolderID)
}

// Snapshot returns one row per holder at time now, sorted by score
// descending, then holder_id ascending.
func (a *Aggregator) Snapshot(now int64) ([]HolderStat, error) {
	return a.snapshot(view{now: now, win: a.cfg.win})
}

// SnapshotWindow is Snapshot with every hold clipped to w and to now:
// each row's score is exactly the batch ScoreWindow of the holder's recorded
// holds (closed ones included, whenever recorded). It needs History.
func (a *Aggregator) SnapshotWindow(now int64, w Window) ([]HolderStat, error) {
	if err := a.windowQuery(w); err != nil {
		return nil, err
	}
	return a.snapshot(view{now: now, win: w, fromHistory: true})
}

func (a *Aggregator) windowQuery(w Window) error {
	if err := w.Validate(); err != nil {
		return err
	}
	if !a.cfg.history {
		return ErrNoHistory
	}
	return nil
}

func (a *Aggregator) snapshot(v view) ([]HolderStat, error) {
	if a.closed.Load() {
		return nil, ErrClosed
	}
	if err := ValidateTime(-1, "now", v.now); err != nil {
		return nil, err
	}
	rows := make([]HolderStat, 0, a.Len())
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		sh.all(func(h *holder) { rows = append(rows, h.stat(v)) })
		sh.mu.Unlock()
	}
	slices.SortFunc(rows, func(x, y HolderStat) int { return statLess(&x, &y) })
	return rows, nil
}

// TopN returns the first n rows of Snapshot's order without sorting every
// holder (a bounded heap, O(holders · log n)). With token != "", rows are the
// (holder, token) pairs of that token only.
func (a *Aggregator) TopN(n int, now int64, token string) ([]HolderStat, error) {
	return a.topN(n, token, view{now: now, win: a.cfg.win})
}

// TopNWindow is TopN over SnapshotWindow's rows. It needs History.
func (a *Aggregator) TopNWindow(n int, now int64, token string, w Window) ([]HolderStat, error) {
	if err := a.windowQuery(w); err != nil {
		return nil, err
	}
	return a.topN(n, token, view{now: now, win: w, fromHistory: true})
}

func (a *Aggregator) topN(n int, token string, v view) ([]HolderStat, error) {
	if a.closed.Load() {
		return nil, ErrClosed
	}
	if err := ValidateTime(-1, "now", v.now); err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, &ValidationError{-1, "n", itoa(n), ReasonOutOfRange, "must be >= 0"}
	}
	if token != "" {
		if err := ValidateID(-1, "token_id", token); err != nil {
			return nil, err
		}
	}
	if n == 0 {
		return []HolderStat{}, nil
	}
	top := topHeap{rows: make([]HolderStat, 0, min(n, 1<<16)), n: n}
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		sh.all(func(h *holder) {
			if token == "" {
				top.offer(h.stat(v))
			} else if ts := h.token(token); ts != nil {
				top.offer(tokenStat(h.id, ts, v))
			}
		})
		sh.mu.Unlock()
	}
	return top.sorted(), nil
}

// Pair returns the row of one (holder, token) pair at now, as TopN with a
// token filter would show it, and whether the pair exists. It costs one map
// lookup (a tracker asks it before every start).
func (a *Aggregator) Pair(now int64, token, holderID string) (HolderStat, bool, error) {
	if a.closed.Load() {
		return HolderStat{}, false, ErrClosed
	}
	for _, err := range []*ValidationError{
		ValidateID(-1, "token_id", token), ValidateID(-1, "holder_id", holderID), ValidateTime(-1, "now", now),
	} {
		if err != nil {
			return HolderStat{}, false, err
		}
	}
	sh, hash := a.shardOf(holderID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	h := sh.get(hash, holderID)
	if h == nil {
		return HolderStat{}, false, nil
	}
	ts := h.token(token)
	if ts == nil {
		return HolderStat{}, false, nil
	}
	return tokenStat(holderID, ts, view{now: now, win: a.cfg.win}), true, nil
}

// GC drops every holder idle for longer than the TTL (now − updated_at >
// TTL) that has no open hold, and returns how many it dropped. Without a TTL
// it drops nothing.
func (a *Aggregator) GC(now int64) (int, error) {
	if a.closed.Load() {
		return 0, ErrClosed
	}
	if err := ValidateTime(-1, "now", now); err != nil {
		return 0, err
	}
	if a.ttl == 0 {
		return 0, nil
	}
	dropped := 0
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		sh.all(func(h *holder) {
			if now-h.updated > a.ttl && h.openHolds() == 0 {
				sh.del(xxhash.Sum64String(h.id), h)
				dropped++
				sh.stats.evicted++
			}
		})
		if sh.count() == 0 {
			sh.tokens = make(map[string]string) // let unused token ids go
		}
		sh.mu.Unlock()
	}
	return dropped, nil
}

// StartGC runs GC(clock()) every interval on one goroutine until Close (or
// StopGC). It is an error to start it twice or without a TTL.
func (a *Aggregator) StartGC(interval time.Duration) error {
	return a.StartGCWith(interval, func(now int64) { _, _ = a.GC(now) })
}

// StartGCWith is StartGC with the collection step supplied by the caller: a
// durable wrapper passes one that logs the GC before applying it. gc runs
// on the background goroutine with the clock's time.
func (a *Aggregator) StartGCWith(interval time.Duration, gc func(now int64)) error {
	if interval <= 0 {
		return fmt.Errorf("gc interval %v must be > 0", interval)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.closed.Load():
		return ErrClosed
	case a.ttl == 0:
		return errors.New("background gc needs a ttl > 0")
	case a.stopGC != nil:
		return errors.New("background gc is already running")
	}
	stop, done := make(chan struct{}), make(chan struct{})
	a.stopGC, a.gcDone = stop, done
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				gc(a.clock())
			}
		}
	}()
	return nil
}

// StopGC stops the background GC, if running, and waits for it to exit.
func (a *Aggregator) StopGC() {
	a.mu.Lock()
	stop, done := a.stopGC, a.gcDone
	a.stopGC, a.gcDone = nil, nil
	a.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// Close stops the background GC and unregisters the metrics. Every later
// call returns ErrClosed; Close itself is idempotent.
func (a *Aggregator) Close() error {
	a.StopGC()
	if a.closed.Swap(true) {
		return nil
	}
	a.reg.Unregister(a.metrics)
	return nil
}

// Len is the number of holders.
func (a *Aggregator) Len() int {
	n := 0
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		n += sh.count()
		sh.mu.Unlock()
	}
	return n
}
