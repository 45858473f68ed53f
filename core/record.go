package core

import (
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/holiman/uint256"
)

// The write path: Record and CloseHold. Front ends call them through a
// Writer (writer.go), so that a durable store can log each write in the
// order it is applied.

// RecordOptions says how a batch is recorded. The zero value is strict
// (all-or-nothing).
type RecordOptions struct {
	// Partial records the valid events and reports the others (a
	// *BatchError), instead of rejecting the whole batch.
	Partial bool
}

// countStrictRejection counts a strict batch that event first failed: the
// events that fail validation as rejected, the valid ones as dropped.
func (a *Aggregator) countStrictRejection(events []HoldEvent, first int) {
	bad := uint64(1)
	for i := first + 1; i < len(events); i++ {
		if a.cfg.validate(&events[i], i) != nil {
			bad++
		}
	}
	a.metrics.rejected.Add(bad)
	a.metrics.dropped.Add(uint64(len(events)) - bad)
}

// CountRejected counts events a front end rejected before they reached the
// aggregator (they could not be converted: a missing start, a wrong type),
// as rejected; dropped valid events of a strict batch it refused whole, as
// dropped. So poh_hold_events_total{result="rejected"} is every event that
// failed validation, whichever layer found it.
func (a *Aggregator) CountRejected(rejected, dropped int) {
	a.metrics.rejected.Add(uint64(max(rejected, 0)))
	a.metrics.dropped.Add(uint64(max(dropped, 0)))
}

// CountStrictRefusal counts a strict batch a front end refused before it
// reached Record because `failed` of its events could not be converted:
// those as rejected, and converted ones as rejected or dropped by whether
// they are valid.
func (a *Aggregator) CountStrictRefusal(converted []HoldEvent, failed int) {
	bad := 0
	for i := range converted {
		if a.cfg.validate(&converted[i], i) != nil {
			bad++
		}
	}
	a.CountRejected(failed+bad, len(converted)-bad)
}

// Validate returns the first event that this aggregator would refuse (as its
// mode requires: exact mode takes integer weights only), or nil; nothing is
// recorded.
func (a *Aggregator) Validate(events []HoldEvent) error {
	for i := range events {
		if err := a.cfg.validate(&events[i], i); err != nil {
			return err
		}
	}
	return nil
}

// validate checks event i as the aggregator's mode requires.
func (cfg *config) validate(e *HoldEvent, i int) *ValidationError {
	if cfg.exact {
		return e.ValidateExact(i)
	}
	if e.valid() {
		return nil
	}
	return e.Validate(i) // the slow path says exactly what is wrong
}

type batchScratch struct {
	hash    []uint64 // xxhash of each event's holder_id
	shardOf []uint32
	order   []int32
	counts  []int32
	touch   byte // see apply
}

// Record records a batch at now (the time of the write: it stamps
// updated_at and decides which closed holds are already over; see model.go).
// In strict mode an invalid event rejects the whole batch: nothing changes
// and the error is that event's *ValidationError. In partial mode the valid
// events are recorded and the error, if any, is a *BatchError listing every
// rejected one. It returns how many events were recorded.
func (a *Aggregator) Record(now int64, events []HoldEvent, o RecordOptions) (int, error) {
	if len(events) == 1 {
		return a.recordOne(now, &events[0], o)
	}
	return a.recordBatch(now, events, o)
}

// recordBatch is Record through the batch path, whatever the batch's size.
func (a *Aggregator) recordBatch(now int64, events []HoldEvent, o RecordOptions) (int, error) {
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
		if err := a.cfg.validate(e, i); err != nil {
			if !o.Partial {
				a.countStrictRejection(events, i)
				return 0, err
			}
			bad = append(bad, err)
		}
	}
	a.metrics.rejected.Add(uint64(len(bad)))
	accepted := len(events) - len(bad)
	if accepted > 0 {
		events = canonEvents(events)
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

// recordOne is Record of the one-event batch {*e}, without the batch
// machinery (scratch, chunks, grouping by shard): check, hash, one lock. Its
// result, error and metric counts are the batch path's for that batch. e is
// only read during the call.
func (a *Aggregator) recordOne(now int64, e *HoldEvent, o RecordOptions) (int, error) {
	if a.closed.Load() {
		return 0, ErrClosed
	}
	if err := ValidateTime(-1, "now", now); err != nil {
		return 0, err
	}
	if err := a.cfg.validate(e, 0); err != nil {
		a.metrics.rejected.Add(1) // strict: the one bad event, nothing dropped
		if o.Partial {
			return 0, &BatchError{Errors: []*ValidationError{err}}
		}
		return 0, err
	}
	if needsCanon(e.TokenID) || needsCanon(e.HolderID) {
		c := *e
		c.TokenID, c.HolderID = CanonicalID(e.TokenID), CanonicalID(e.HolderID)
		e = &c
	}
	hash := xxhash.Sum64String(e.HolderID)
	sh := &a.shards[hash&a.mask]
	sh.mu.Lock()
	h := sh.get(hash, e.HolderID)
	if h == nil {
		h = sh.create(hash, e.HolderID)
	}
	sh.add(&a.cfg, now, e, h)
	sh.mu.Unlock()
	return 1, nil
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
	// This pass reads the events in input order, which the hardware
	// prefetches; the shard runs below read them in shard order, which it
	// cannot. So it also touches each token id (the holder id it hashes),
	// and the runs find both in the cache: in a cold ingest, where every
	// event interns a new token, the token's first read was a cache miss
	// in the runs, an eighth of the Record.
	var touch byte
	for i := range events {
		s := invalid
		if len(bad) > 0 && bad[0].Index == base+i {
			bad = bad[1:]
		} else {
			e := &events[i]
			hash := xxhash.Sum64String(e.HolderID)
			hashes[i] = hash
			s = uint32(hash & a.mask)
			touch ^= e.TokenID[0] // valid, so non-empty
		}
		shardOf[i] = s
		counts[s]++
	}
	sc.touch = touch // used, so that the loads stay
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
		created := false
		for k, ix := range group {
			h := found[k]
			if h == nil && created { // an earlier event of the group may have created it
				h = sh.get(hashes[ix], events[ix].HolderID)
			}
			if h == nil {
				h, created = sh.create(hashes[ix], events[ix].HolderID), true
			}
			sh.add(cfg, now, &events[ix], h)
		}
	}
}

// add applies one valid event to its holder h. Caller holds sh.mu.
func (sh *shard) add(cfg *config, now int64, e *HoldEvent, h *holder) {
	ts := h.token(e.TokenID)
	if ts == nil {
		ts = h.addToken(sh.intern(e.TokenID))
	}
	if ts.live != nil {
		ts.fold(cfg, now)
	}
	wf, wx := e.Weight, (*uint256.Int)(nil)
	if cfg.exact {
		w, _ := e.weightExact(0) // validated
		wf, wx = 0, &w           // the float weight is unused in exact mode
	}
	if e.HasEnd {
		ts.finish(cfg, sh, now, e.Start, e.End, wf, wx)
	} else {
		ts.appendLive(cfg, liveHold{e.Start, noEnd, wf}, wx)
		sh.open++
	}
	ts.events++
	ts.updated = now
	h.updated = now
	sh.stats.accepted++
}

// CloseHold ends every open hold of (token, holder) at time at, with
// updated_at = now, and returns how many it closed. Each is credited
// max(0, at − start) × weight (from the first write at or after at, if at is
// ahead of now). ErrNoOpenHold (wrapped) if there is none; a
// *ValidationError if at is out of range or before the start of one of the
// holds (then nothing changes).
func (a *Aggregator) CloseHold(now int64, token, holderID string, at int64) (int, error) {
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
	token, holderID = CanonicalID(token), CanonicalID(holderID)
	sh, hash := a.shardOf(holderID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	h := sh.get(hash, holderID)
	var ts *tokenState
	if h != nil {
		ts = h.token(token)
	}
	n := 0
	if ts != nil {
		for i := range ts.live {
			if l := &ts.live[i]; l.isOpen() {
				if at < l.start {
					return 0, &ValidationError{-1, "at", itoa64(at), ReasonEndBeforeStart,
						fmt.Sprintf("is before start %d of an open hold", l.start)}
				}
				n++
			}
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("close %s/%s: %w", quoteID(token), quoteID(holderID), ErrNoOpenHold)
	}
	ts.fold(&a.cfg, now)
	live := ts.live
	var weights []uint256.Int
	if ts.ex != nil {
		weights = ts.ex.live
		ts.ex.live = nil
	}
	ts.live = nil
	for i, l := range live {
		var wx *uint256.Int
		if weights != nil {
			wx = &weights[i]
		}
		if l.isOpen() {
			ts.finish(&a.cfg, sh, now, l.start, at, l.weight, wx)
		} else {
			ts.appendLive(&a.cfg, l, wx)
		}
	}
	sh.open -= int64(n)
	ts.updated, h.updated = now, now
	return n, nil
}
