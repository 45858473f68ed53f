package core

import (
	"fmt"

	"github.com/holiman/uint256"
)

// Export / Import give a durable store (the daemon's, or one behind the C
// API) the aggregator's exact state, so that a snapshot plus the log written
// after it rebuilds an aggregator that answers every query with the same
// bits as the one that wrote them: Neumaier sums are exported with their
// compensation terms, tokens and open holds keep their order (summation
// order is part of the result), and with History each pair's closed holds
// are exported in recording order so window queries also answer the same.

// StateConfig is what an exported state depends on beyond the events: a
// campaign window clips closed scores at record time, and history exists
// only when it was kept. A store records it next to the state and must not
// import a state into an aggregator configured differently (see
// Aggregator.StateConfig).
type StateConfig struct {
	Window  Window // All when there is no campaign window
	History bool
	Exact   bool // exact mode: weights and sums are integers
}

// StateConfig is the aggregator's window, history and exact setting.
func (a *Aggregator) StateConfig() StateConfig {
	return StateConfig{Window: a.cfg.win, History: a.cfg.history, Exact: a.cfg.exact}
}

// IntervalState is one closed hold kept in history (raw, unclipped).
type IntervalState struct {
	Start, End int64
	Weight     float64
	Wei        *Wei // the exact weight, in exact mode
}

// LiveHoldState is one live hold: open (HasEnd false), or closed with an
// end after the last write's now (see model.go).
type LiveHoldState struct {
	Start  int64
	End    int64 // when HasEnd
	HasEnd bool
	Weight float64
	Wei    *Wei // the exact weight, in exact mode
}

// TokenState is one (holder, token) pair's state.
type TokenState struct {
	TokenID    string
	ClosedSum  float64 // Neumaier running sum of the closed holds' scores
	ClosedComp float64 // and its compensation term
	// ClosedExact is the closed holds' exact score, in exact mode (where
	// ClosedSum and ClosedComp are 0).
	ClosedExact *Int
	Seconds     int64 // closed seconds
	Events      int64
	UpdatedAt   int64
	Live        []LiveHoldState // in recording order
	// History is the pair's closed holds in recording order; nil unless
	// the aggregator keeps History (Import ignores it otherwise).
	History []IntervalState
}

// HolderState is one holder's state: its tokens in the order they were first
// recorded.
type HolderState struct {
	HolderID  string
	UpdatedAt int64
	Tokens    []TokenState
}

// MetricsState is the aggregator's cumulative metric counters (summed over
// shards), so that counters survive a snapshot/restore like the state does.
// The rejected counter is not included: rejected events are never stored.
type MetricsState struct {
	Accepted       uint64
	Evicted        uint64
	DurationCounts []uint64 // per bucket (not cumulative), +Inf last; nil if none observed
	DurationSum    float64
	ScoreCounts    []uint64
	ScoreSum       float64
}

// Export copies the whole state. Each shard is copied under its lock; for a
// point-in-time copy the caller must keep writers out while it runs (the
// daemon's store holds its append lock). Holders come in no particular order.
func (a *Aggregator) Export() ([]HolderState, MetricsState, error) {
	if a.closed.Load() {
		return nil, MetricsState{}, ErrClosed
	}
	out := make([]HolderState, 0, a.Len())
	var total shardStats
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		sh.all(func(h *holder) {
			hs := HolderState{HolderID: h.id, UpdatedAt: h.updated}
			h.each(func(ts *tokenState) {
				t := TokenState{TokenID: ts.token, ClosedSum: ts.closed.sum, ClosedComp: ts.closed.comp,
					Seconds: ts.seconds, Events: ts.events, UpdatedAt: ts.updated}
				if a.cfg.exact {
					x := Int{}
					if ts.ex != nil {
						x = ts.ex.closed
					}
					t.ClosedExact = &x
				}
				if len(ts.live) > 0 {
					t.Live = make([]LiveHoldState, len(ts.live))
					for j, l := range ts.live {
						t.Live[j] = LiveHoldState{Start: l.start, Weight: l.weight}
						if !l.isOpen() {
							t.Live[j].End, t.Live[j].HasEnd = l.end, true
						}
						if w := ts.liveWeight(j); w != nil {
							t.Live[j].Wei = WeiOf(w)
						}
					}
				}
				if ts.hist != nil && len(*ts.hist) > 0 {
					t.History = make([]IntervalState, len(*ts.hist))
					for j, iv := range *ts.hist {
						t.History[j] = IntervalState{Start: iv.start, End: iv.end, Weight: iv.weight}
						if ts.ex != nil {
							t.History[j].Wei = WeiOf(&ts.ex.hist[j])
						}
					}
				}
				hs.Tokens = append(hs.Tokens, t)
			})
			out = append(out, hs)
		})
		total.add(&sh.stats)
		sh.mu.Unlock()
	}
	m := MetricsState{Accepted: total.accepted, Evicted: total.evicted, DurationCounts: total.durCount,
		DurationSum: total.durSum, ScoreCounts: total.scoCount, ScoreSum: total.scoSum}
	return out, m, nil
}

// Import adds exported holders (and adds m to the metric counters). A holder
// that already exists, an invalid id or time, a duplicate token of one
// holder, an invalid live hold or an invalid history interval is an
// error; Import checks every holder before it changes anything. History is
// kept only when the aggregator has History; the caller checks that the
// states came from an aggregator with the same StateConfig.
func (a *Aggregator) Import(holders []HolderState, m MetricsState) error {
	if a.closed.Load() {
		return ErrClosed
	}
	if m.DurationCounts != nil && (len(m.DurationCounts) != len(durationBuckets)+1 ||
		len(m.ScoreCounts) != len(scoreBuckets)+1) {
		return fmt.Errorf("import: histogram buckets differ (%d, %d; want %d, %d)",
			len(m.DurationCounts), len(m.ScoreCounts), len(durationBuckets)+1, len(scoreBuckets)+1)
	}
	seen := make(map[string]struct{}, len(holders))
	for i := range holders {
		if err := checkHolderState(&holders[i], a.cfg.exact); err != nil {
			return fmt.Errorf("import: holder %d: %w", i, err)
		}
		if _, dup := seen[holders[i].HolderID]; dup {
			return fmt.Errorf("import: holder %d: %s appears twice", i, quoteID(holders[i].HolderID))
		}
		seen[holders[i].HolderID] = struct{}{}
	}
	for id := range seen {
		sh, hash := a.shardOf(id)
		sh.mu.Lock()
		exists := sh.get(hash, id) != nil
		sh.mu.Unlock()
		if exists {
			return fmt.Errorf("import: holder %s already exists", quoteID(id))
		}
	}
	for i := range holders {
		hs := &holders[i]
		sh, hash := a.shardOf(hs.HolderID)
		sh.mu.Lock()
		h := sh.newHolder(hs.HolderID)
		h.updated = hs.UpdatedAt
		for _, t := range hs.Tokens {
			ts := h.addToken(sh.intern(t.TokenID))
			ts.closed = neumaier{t.ClosedSum, t.ClosedComp}
			ts.seconds, ts.events, ts.updated = t.Seconds, t.Events, t.UpdatedAt
			if a.cfg.exact {
				ts.exact().closed = *t.ClosedExact
			}
			if len(t.Live) > 0 {
				ts.live = make([]liveHold, len(t.Live))
				for j, l := range t.Live {
					ts.live[j] = liveHold{l.Start, noEnd, l.Weight}
					if l.HasEnd {
						ts.live[j].end = l.End
					}
					if a.cfg.exact {
						var w uint256.Int
						ts.ex.live = append(ts.ex.live, *w.SetBytes32(l.Wei[:]))
					}
				}
				sh.open += ts.openHolds()
			}
			if a.cfg.history && len(t.History) > 0 {
				hist := make([]interval, len(t.History))
				for j, iv := range t.History {
					hist[j] = interval{iv.Start, iv.End, iv.Weight}
					if a.cfg.exact {
						var w uint256.Int
						ts.ex.hist = append(ts.ex.hist, *w.SetBytes32(iv.Wei[:]))
					}
				}
				ts.hist = &hist
			}
		}
		sh.put(hash, h)
		sh.mu.Unlock()
	}
	sh := &a.shards[0]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.stats.add(&shardStats{accepted: m.Accepted, evicted: m.Evicted, durCount: m.DurationCounts,
		durSum: m.DurationSum, scoCount: m.ScoreCounts, scoSum: m.ScoreSum})
	return nil
}

func checkHolderState(hs *HolderState, exact bool) error {
	if err := ValidateID(-1, "holder_id", hs.HolderID); err != nil {
		return err
	}
	if err := ValidateTime(-1, "updated_at", hs.UpdatedAt); err != nil {
		return err
	}
	if len(hs.Tokens) == 0 {
		return fmt.Errorf("holder %s has no token", quoteID(hs.HolderID))
	}
	tokens := make(map[string]struct{}, len(hs.Tokens))
	for _, t := range hs.Tokens {
		if err := ValidateID(-1, "token_id", t.TokenID); err != nil {
			return err
		}
		if _, dup := tokens[t.TokenID]; dup {
			return fmt.Errorf("token %s appears twice", quoteID(t.TokenID))
		}
		tokens[t.TokenID] = struct{}{}
		if err := ValidateTime(-1, "updated_at", t.UpdatedAt); err != nil {
			return err
		}
		if t.Seconds < 0 || t.Events < 0 {
			return fmt.Errorf("token %s: negative seconds or events", quoteID(t.TokenID))
		}
		if err := checkExactState(&t, exact); err != nil {
			return fmt.Errorf("token %s: %w", quoteID(t.TokenID), err)
		}
		for _, l := range t.Live {
			if err := validateSpan(-1, l.Start, l.End, l.HasEnd); err != nil {
				return err
			}
			if err := ValidateWeight(-1, l.Weight); err != nil && !exact {
				return err
			}
		}
		for _, iv := range t.History {
			if err := ValidateTime(-1, "start", iv.Start); err != nil {
				return err
			}
			if err := ValidateTime(-1, "end", iv.End); err != nil {
				return err
			}
			if iv.End < iv.Start {
				return &ValidationError{-1, "end", itoa64(iv.End), ReasonEndBeforeStart,
					fmt.Sprintf("is before start %d (history of token %s)", iv.Start, quoteID(t.TokenID))}
			}
			if err := ValidateWeight(-1, iv.Weight); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkExactState checks that a pair's state has exact weights and sums
// exactly when the aggregator is in exact mode.
func checkExactState(t *TokenState, exact bool) error {
	has := t.ClosedExact != nil
	for _, l := range t.Live {
		if (l.Wei != nil) != exact {
			has = !exact
		}
	}
	for _, iv := range t.History {
		if (iv.Wei != nil) != exact {
			has = !exact
		}
	}
	if has != exact {
		if exact {
			return fmt.Errorf("exact mode needs exact sums and weights; this state has float ones")
		}
		return fmt.Errorf("this state has exact weights; it needs an exact-mode aggregator")
	}
	return nil
}
