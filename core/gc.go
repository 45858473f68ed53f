package core

import (
	"errors"
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"
)

// TTL garbage collection, and the tree's one background GC loop.

// GC drops every holder idle for longer than the TTL (now − updated_at >
// TTL) that holds nothing live (no open hold, no hold whose end is after
// now), and returns how many it dropped. Like every write at now, it
// credits the live holds that ended at or before now (of every pair: it
// visits them all). Without a TTL it does nothing.
// Use it through a Writer, so that a durable store logs it.
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
			if !h.holding(&a.cfg, now) && now-h.updated > a.ttl {
				sh.drop(xxhash.Sum64String(h.id), h)
				dropped++
				sh.stats.evicted++
			}
		})
		if sh.holders.n == 0 {
			sh.forget() // let unused token ids and holder memory go
		}
		sh.mu.Unlock()
	}
	return dropped, nil
}

// StartGC runs step(clock()) every interval on one goroutine until StopGC
// or Close. step is the collection: a Writer's GC, so that a durable store
// logs each collection before it drops holders. It is an error to start it
// twice, or on an aggregator without a TTL.
func (a *Aggregator) StartGC(interval time.Duration, step func(now int64)) error {
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
				step(a.clock())
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
