// Package server exposes one core.Aggregator over gRPC (proto/hold.proto,
// package poh) and HTTP JSON. Handlers are thin: they convert wire messages
// to core.HoldEvents and back; every write goes through Service to its one
// core.Writer (the durable store, or core.Memory), every read to the
// aggregator as a core.Query. Listeners, signals and shutdown belong to
// cmd/holdmetricsd.
package server

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// ErrDraining is returned for new writes once shutdown has begun.
var ErrDraining = errors.New("server is shutting down")

// Config is the part of the daemon's configuration the handlers use.
type Config struct {
	// MaxBatch bounds the events of one batch request (gRPC or HTTP).
	MaxBatch int
	// MaxBodyBytes bounds an HTTP request body.
	MaxBodyBytes int64
	// AuthToken, when set, is required ("Authorization: Bearer <token>")
	// for writes, and for reads too with AuthReads.
	AuthToken string
	AuthReads bool
	// MaxInFlight bounds the requests served at once, both front ends
	// (DefaultMaxInFlight when 0); beyond it a call is refused at once.
	MaxInFlight int
	// MaxRowErrors bounds the per-row errors a partial batch's reply lists
	// (DefaultMaxRowErrors when 0); the reply still counts them all.
	MaxRowErrors int
	// Clock is Unix seconds (default: the wall clock).
	Clock  func() int64
	Logger *slog.Logger
}

// Service is the write path and the lifecycle shared by both front ends.
type Service struct {
	agg *core.Aggregator
	w   core.Writer
	cfg Config
	log *slog.Logger

	draining atomic.Bool
	drainCh  chan struct{}
	drainOne sync.Once
	busy     *inflight
}

// NewService serves agg, written through w (its store, or core.Memory(agg)).
func NewService(agg *core.Aggregator, w core.Writer, cfg Config) *Service {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1 << 20
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 20
	}
	if cfg.Clock == nil {
		cfg.Clock = func() int64 { return time.Now().Unix() }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxRowErrors <= 0 {
		cfg.MaxRowErrors = DefaultMaxRowErrors
	}
	return &Service{agg: agg, w: w, cfg: cfg, busy: newInflight(cfg.MaxInFlight), log: cfg.Logger, drainCh: make(chan struct{})}
}

// Aggregator is the served aggregator (for reads).
func (s *Service) Aggregator() *core.Aggregator { return s.agg }

// Now is the service clock.
func (s *Service) Now() int64 { return s.cfg.Clock() }

// Drain refuses new writes from now on and tells open streams to finish.
func (s *Service) Drain() {
	s.drainOne.Do(func() {
		s.draining.Store(true)
		close(s.drainCh)
	})
}

// Draining reports whether Drain was called.
func (s *Service) Draining() bool { return s.draining.Load() }

// Ready reports whether the service takes writes.
func (s *Service) Ready() bool { ok, _ := s.Health(); return ok }

// Health says whether the service takes writes, and why not: draining, or
// a writer that cannot write now (a failed store, healing by itself).
func (s *Service) Health() (bool, string) {
	if s.draining.Load() {
		return false, "draining"
	}
	if h, ok := s.w.(interface{ Health() error }); ok {
		if err := h.Health(); err != nil {
			return false, err.Error()
		}
	}
	return true, ""
}

// record applies and logs events; the returned ticket must be waited for
// (wait) before the events are acknowledged.
func (s *Service) record(events []core.HoldEvent, partial bool) (int, core.Ticket, error) {
	if s.draining.Load() {
		return 0, 0, ErrDraining
	}
	return s.w.Record(s.cfg.Clock(), events, core.RecordOptions{Partial: partial})
}

func (s *Service) wait(t core.Ticket) error { return s.w.Wait(t) }

// Record records events and returns once they are durable.
func (s *Service) Record(events []core.HoldEvent, partial bool) (int, error) {
	if s.draining.Load() {
		return 0, ErrDraining
	}
	return core.RecordAndWait(s.w, s.cfg.Clock(), events, core.RecordOptions{Partial: partial})
}

// CloseHold closes every open hold of (token, holder) at `at` (the clock
// when at < 0).
func (s *Service) CloseHold(token, holder string, at int64) (int, error) {
	if s.draining.Load() {
		return 0, ErrDraining
	}
	now := s.cfg.Clock()
	if at < 0 {
		at = now
	}
	return s.w.CloseHold(now, token, holder, at)
}

// GC runs one TTL collection at now (logged, so a restart repeats it).
func (s *Service) GC(now int64) (int, error) { return s.w.GC(now) }
