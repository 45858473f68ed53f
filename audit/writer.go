package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
)

// Writer is a core.Writer that sends every write to a Store and mirrors
// its record to the audit; a write is acknowledged once the store has it
// durably and the audit has it verified.
//
// Locking: mu orders writes (the store's apply and the seq assigned to its
// record happen under it, so seq order is log order) and guards the
// state below. One mirror goroutine does all audit I/O: it waits until a
// batch of records is durable in the store (the last waitable one of the
// batch: stores are written in order), writes it as one group, and
// advances mirrored. It also takes the snapshots (writes wait meanwhile)
// and, after any failure, resyncs from the store (writes are refused
// meanwhile): the store's records are the truth, and the audit is made to
// hold exactly them (see resync).
type Writer struct {
	st   Store
	log  *Log
	opts Options
	l    *slog.Logger

	mu        sync.Mutex
	cond      *sync.Cond
	seq       int64 // last seq assigned
	pending   []entry
	mirrored  int64 // last seq in the audit
	epoch     uint64
	epochEnd  map[uint64]int64
	err       error // why writes are refused (then a resync is due); nil while healthy
	blocked   bool  // a snapshot runs: writes wait
	closed    bool
	stopped   bool // the mirror goroutine has ended (Close)
	sinceSnap int64
	retryAt   time.Time
	retryWait time.Duration

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

type entry struct {
	seq int64
	rec []byte
	t   core.Ticket // the store's; 0 for a GC (never waited for)
}

// Options configures a Writer.
type Options struct {
	// SnapshotBytes: the Writer has the store take a snapshot once this
	// many record bytes were written since the last one (default 256 MiB;
	// < 0: never).
	SnapshotBytes int64
	// AckTimeout bounds how long a write that the store has durably but
	// the audit does not (immudb unreachable) waits for it before its
	// Wait fails (default 30s).
	AckTimeout time.Duration
	Logger     *slog.Logger
}

// Writer is a core.Writer.
var _ core.Writer = (*Writer)(nil)

const epochShift = 48

// ErrUnaudited: the store has the write, the audit does not (yet): the
// write is not acknowledged, and it is audited (and counts) once the audit
// is back. Do not blindly retry it.
var ErrUnaudited = errors.New("audit: the write is stored but the audit is unreachable")

// NewWriter syncs the audit with st (see resync: records the store has and
// the audit lacks are mirrored; a store that lacks audited records is
// ErrDiverged) and starts mirroring. Close closes st and the log too.
func NewWriter(ctx context.Context, st Store, log *Log, opts Options) (*Writer, error) {
	if opts.SnapshotBytes == 0 {
		opts.SnapshotBytes = 256 << 20
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{st: st, log: log, opts: opts, l: opts.Logger, epochEnd: map[uint64]int64{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	if err := w.resync(ctx); err != nil {
		return nil, err
	}
	go w.mirror()
	return w, nil
}

// Record applies events through the store and queues their record for the
// audit; acknowledged once Wait(ticket) returns nil.
func (w *Writer) Record(now int64, events []core.HoldEvent, o core.RecordOptions) (int, core.Ticket, error) {
	rec := store.EventsRecord(now, events, o)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writableLocked(); err != nil {
		return 0, 0, err
	}
	n, t, err := w.st.Record(now, events, o)
	var tk core.Ticket
	if n > 0 {
		tk = w.appendLocked(rec, t)
	}
	return n, tk, err
}

// CloseHold closes through the store and waits until audited.
func (w *Writer) CloseHold(now int64, token, holder string, at int64) (int, error) {
	rec := store.CloseRecord(now, token, holder, at)
	w.mu.Lock()
	if err := w.writableLocked(); err != nil {
		w.mu.Unlock()
		return 0, err
	}
	// The store's CloseHold waits for its record itself, under mu (the
	// seq must be its log position; closes are rare): no ticket is needed.
	n, err := w.st.CloseHold(now, token, holder, at)
	var tk core.Ticket
	if err == nil {
		tk = w.appendLocked(rec, 0)
	}
	w.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return n, w.Wait(tk)
}

// GC runs the store's GC and queues its record (not waited for, as in the
// stores).
func (w *Writer) GC(now int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writableLocked(); err != nil {
		return 0, err
	}
	n, err := w.st.GC(now)
	if err == nil {
		w.appendLocked(store.GCRecord(now), 0)
	}
	return n, err
}

// writableLocked waits out a snapshot, then says whether writes go.
func (w *Writer) writableLocked() error {
	for w.blocked && !w.closed {
		w.cond.Wait()
	}
	switch {
	case w.closed:
		return store.ErrClosed
	case w.err != nil:
		return w.err
	}
	return nil
}

func (w *Writer) appendLocked(rec []byte, t core.Ticket) core.Ticket {
	w.seq++
	w.pending = append(w.pending, entry{seq: w.seq, rec: rec, t: t})
	w.sinceSnap += int64(len(rec))
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return core.Ticket(w.epoch<<epochShift | uint64(w.seq))
}

// Wait blocks until the write of t is durable in the store and verified in
// the audit.
func (w *Writer) Wait(t core.Ticket) error {
	if t == 0 {
		return nil
	}
	epoch, seq := uint64(t)>>epochShift, int64(uint64(t)&(1<<epochShift-1))
	deadline := time.Now().Add(w.opts.AckTimeout)
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		switch {
		case epoch < w.epoch:
			if seq <= w.epochEnd[epoch] {
				return nil
			}
			return fmt.Errorf("%w: the store dropped the write when it recovered from a failure", store.ErrFailed)
		case seq <= w.mirrored:
			return nil
		case w.err != nil && time.Now().After(deadline):
			if errors.Is(w.err, store.ErrFailed) {
				return fmt.Errorf("%w (the write may be lost: the audit resyncs once the store heals)", w.err)
			}
			return fmt.Errorf("%w: %w", ErrUnaudited, w.err)
		case w.stopped:
			return store.ErrClosed
		}
		if w.err != nil {
			// Woken by the resync, or by the mirror's retry tick.
			w.waitTimeout(100 * time.Millisecond)
			continue
		}
		w.cond.Wait()
	}
}

// waitTimeout is cond.Wait that also returns after d.
func (w *Writer) waitTimeout(d time.Duration) {
	t := time.AfterFunc(d, func() {
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	w.cond.Wait()
	t.Stop()
}

// Health is nil while writes go: the store's health, then the audit's.
func (w *Writer) Health() error {
	if err := w.st.Health(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// StoreFailed tells the Writer that the store failed (wire it to the
// store's OnHealth): records it has not yet seen durable are then never
// mirrored on the strength of a ticket (a store that heals cuts them and
// reuses their tickets); a resync decides.
func (w *Writer) StoreFailed(err error) {
	if err == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failLocked(fmt.Errorf("%w: %w", store.ErrFailed, err))
}

func (w *Writer) failLocked(err error) {
	if w.err == nil {
		w.err = err
		w.retryWait, w.retryAt = 50*time.Millisecond, time.Now()
		w.l.Error("audit: writes are refused until the audit is resynced with the store (retried by itself)", "err", err)
	}
	w.cond.Broadcast()
}

// Close stops writes, mirrors what is pending, takes a final snapshot when
// records were written since the last one, and closes the store and the
// audit connection. Idempotent.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	w.mu.Lock()
	err, since := w.err, w.sinceSnap
	w.stopped = true
	w.cond.Broadcast()
	w.mu.Unlock()
	if err == nil && since > 0 && w.opts.SnapshotBytes > 0 {
		err = w.snapshot()
	}
	if cerr := w.st.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if cerr := w.log.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// mirror is the one goroutine that writes the audit.
func (w *Writer) mirror() {
	defer close(w.done)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		stopping := false
		select {
		case <-w.kick:
		case <-tick.C:
		case <-w.stop:
			stopping = true
		}
		w.mu.Lock()
		if w.err != nil && !stopping && time.Now().After(w.retryAt) && w.st.Health() == nil {
			// Writes are refused meanwhile (w.err), so the store holds still.
			auditFailed := !errors.Is(w.err, store.ErrFailed)
			w.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			var err error
			if auditFailed {
				err = w.log.reopen(ctx) // the mirror goroutine is the only user of the session
			}
			if err == nil {
				err = w.resync(ctx)
			}
			cancel()
			w.mu.Lock()
			if err != nil {
				w.retryWait = min(2*w.retryWait, 5*time.Second)
				w.retryAt = time.Now().Add(w.retryWait)
				w.l.Warn("audit: resync failed; retrying", "err", err, "retry_in", w.retryWait.String())
			}
			w.cond.Broadcast()
		}
		for w.err == nil && len(w.pending) > 0 {
			w.mirrorLocked()
		}
		snap := w.err == nil && !stopping && w.opts.SnapshotBytes > 0 && w.sinceSnap >= w.opts.SnapshotBytes
		w.mu.Unlock()
		if snap {
			if err := w.snapshot(); err != nil {
				w.l.Error("audit: snapshot failed; the store keeps every record, will retry", "err", err)
			}
		}
		if stopping {
			return
		}
	}
}

// mirrorLocked mirrors the head of pending as one group. Caller holds mu;
// it is released during the I/O.
func (w *Writer) mirrorLocked() {
	n, size := 0, 0
	for n < len(w.pending) && (n == 0 || size < maxGroupBytes/2) && n < 4096 {
		size += min(len(w.pending[n].rec), WholeBytes) + 8
		n++
	}
	batch := w.pending[:n]
	epoch := w.epoch
	w.mu.Unlock()

	var err error
	for i := len(batch) - 1; i >= 0; i-- {
		if batch[i].t != 0 {
			err = w.st.Wait(batch[i].t) // the store writes in order: this covers the ones before
			break
		}
	}
	if err == nil {
		g := group{first: batch[0].seq}
		for _, e := range batch {
			g.items = append(g.items, itemOf(e.rec))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = w.log.putGroup(ctx, g)
		cancel()
	}

	w.mu.Lock()
	if w.err != nil || epoch != w.epoch {
		return // failed meanwhile: the resync decides what the audit holds
	}
	if err != nil {
		w.failLocked(err)
		return
	}
	w.pending = w.pending[n:]
	if len(w.pending) == 0 {
		w.pending = nil
	}
	w.mirrored = batch[n-1].seq
	w.cond.Broadcast()
}

func itemOf(rec []byte) item {
	if len(rec) <= WholeBytes {
		return item{data: rec}
	}
	sum := sha256.Sum256(rec)
	return item{hashed: true, data: sum[:]}
}

// snapshot has the store take a snapshot between two writes, once every
// earlier record is audited, and records it in the audit.
func (w *Writer) snapshot() error {
	w.mu.Lock()
	w.blocked = true
	for w.err == nil && len(w.pending) > 0 {
		w.mirrorLocked()
	}
	err, seq := w.err, w.seq
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.blocked = false
		w.cond.Broadcast()
		w.mu.Unlock()
	}()
	if err != nil {
		return err
	}
	name, digest, err := w.st.Snapshot()
	if err != nil {
		w.mu.Lock()
		w.sinceSnap = w.opts.SnapshotBytes / 2 // retried after half the interval
		w.mu.Unlock()
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.log.putSnap(ctx, snapEntry{seq: seq, name: name, digest: digest}); err != nil {
		w.mu.Lock()
		w.failLocked(err) // the resync finds the snapshot and records it
		w.mu.Unlock()
		return err
	}
	w.mu.Lock()
	w.sinceSnap = 0
	w.mu.Unlock()
	w.l.Info("audit: snapshot recorded", "snapshot", name, "seq", seq)
	return nil
}
