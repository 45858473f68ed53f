package core

import (
	"errors"
	"fmt"
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
// lock order to get wrong. Reads (Query) visit the shards one after another:
// each holder's row is consistent, the whole is not a point-in-time cut
// across shards. a.mu guards only the lifecycle (closed flag, GC loop).
//
// Files: this one holds the type, its options and its lifecycle; model.go
// the per-holder state and how a row is computed from it; record.go the write
// path; query.go the read path; gc.go TTL collection; writer.go the Writer
// interface that every front end writes through; state.go export/import.

// ErrClosed is returned by every method of an Aggregator after Close.
var ErrClosed = errors.New("aggregator is closed")

// ErrNoOpenHold is returned by CloseHold when the pair has no open hold.
var ErrNoOpenHold = errors.New("no open hold")

// ErrNoHistory is returned by window queries on an aggregator without History.
var ErrNoHistory = errors.New("window queries need an aggregator created with History")

// Options configures New. The zero value is valid.
type Options struct {
	// Shards is the number of shards, rounded up to a power of two
	// (default 64).
	Shards int
	// TTL drops, on GC, a holder idle for longer than TTL that holds
	// nothing (no open hold, no hold whose end is still ahead). Zero keeps
	// every holder forever. Whole seconds are used.
	TTL time.Duration
	// Registerer receives the aggregator's collectors. Nil means the
	// aggregator creates and owns a fresh registry (see Gatherer). It is
	// never prometheus.DefaultRegisterer unless the caller passes it.
	Registerer prometheus.Registerer
	// ConstLabels are added to every metric, e.g. to tell two aggregators
	// registered on one registry apart. Never put holder or token ids here.
	ConstLabels prometheus.Labels
	// Clock returns the current Unix time in seconds: the "now" of the
	// background GC and the default of callers that have no clock of their
	// own. Default: the wall clock.
	Clock func() int64
	// Window, when set, is a campaign window fixed for the aggregator's
	// life: every hold is clipped to it when it is credited (O(1) per event)
	// and live holds are clipped when read.
	Window *Window
	// History keeps every closed hold (start, end, weight: 24 bytes per
	// event, plus slice growth) so that a Query with a Window can answer
	// for any window. Off by default to keep memory bounded.
	History bool
	// Exact makes every weight an integer 0 ≤ w < 2^256 (HoldEvent.Wei, or
	// an integer Weight up to 2^53) and every score the exact integer
	// Σ seconds × w (HolderStat.Exact); see exact.go. Fixed for life.
	Exact bool
}

// HolderStat is one holder's row in a query result. With a token filter, the
// fields describe that one (holder, token) pair.
type HolderStat struct {
	HolderID     string
	Score        float64 // closed score + live holds up to now
	TotalSeconds int64   // closed seconds + live seconds up to now (unweighted)
	Events       int64   // events recorded
	OpenHolds    int64   // holds without an end
	Tokens       int     // distinct tokens held (1 with a token filter)
	UpdatedAt    int64   // the "now" of the last write for the holder
	// Exact is the exact score in exact mode (Score is then its nearest
	// float64); nil in float mode.
	Exact *Int
}

// Aggregator accumulates hold scores per holder and per (holder, token).
// It is safe for concurrent use by any number of goroutines. Its write
// methods are used through a Writer (Memory, or a durable store that logs
// each write); reads go to it directly.
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

// config is what the record and read paths need to know, fixed at New.
type config struct {
	win     Window // campaign window; All when none
	history bool
	exact   bool
}

type shard struct {
	mu      sync.Mutex
	holders holderTable // keyed by the xxhash of the holder id (see holderTable)
	tokens  internTable // interned token ids: one copy per shard (see internTable)
	slab    []holder    // the rest of the current holder allocation (see newHolder)
	slabs   [][]holder  // every holder allocation, in order (see live)
	free    []*holder   // dropped holders' memory, for newHolder
	open    int64       // open holds (no end) in this shard
	stats   shardStats  // metric counters, guarded by mu
	_       [64]byte    // keep neighbouring shard locks off one cache line
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
	cfg := config{win: All, history: opts.History, exact: opts.Exact}
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

// Close stops the background GC and unregisters the metrics. Every later
// call returns ErrClosed; Close itself is idempotent. A Writer in front of
// the aggregator is closed first, by its owner.
func (a *Aggregator) Close() error {
	a.StopGC()
	if a.closed.Swap(true) {
		return nil
	}
	a.reg.Unregister(a.metrics)
	return nil
}

// Reset drops every holder, and the counters that describe the state
// (accepted, evictions, histograms; not rejected and dropped, which count
// requests): a durable store rebuilds the aggregator from its data dir
// after a failed write (store's heal).
func (a *Aggregator) Reset() {
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		sh.holders = holderTable{}
		sh.forget()
		sh.open = 0
		sh.stats = shardStats{}
		sh.mu.Unlock()
	}
}

// Len is the number of holders.
func (a *Aggregator) Len() int {
	n := 0
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		n += sh.holders.n
		sh.mu.Unlock()
	}
	return n
}
