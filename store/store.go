// Package store is holdmetricsd's durable embedded store: a checksummed,
// append-only log of accepted writes with group commit, plus periodic
// snapshots of the aggregator's exact state that bound restart time.
//
// Layout of a data dir:
//
//	LOCK                   flock'd by the owning process (ErrLocked for a second one)
//	wal-<016d>.log         log segments, "POHWAL01" then records (see codec.go)
//	snap-<016d>.snap       the state after every segment numbered below it
//
// Order is the whole trick: Store applies a write to the aggregator and
// appends its record under one mutex, so the log order is the apply order,
// and replaying the log with each record's original "now" rebuilds the
// aggregator bit for bit (updated_at included). A write is acknowledged only
// after its record reached the OS (policies interval and none) or the disk
// (always). Store is safe for concurrent use; its one flusher goroutine and
// its snapshot goroutine stop in Close.
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// Fsync is the durability policy; see README "Daemon / durability".
type Fsync string

// The fsync policies.
const (
	// FsyncAlways acknowledges a write after fdatasync covered it
	// (concurrent writers share one sync: group commit).
	FsyncAlways Fsync = "always"
	// FsyncInterval acknowledges after write(2) (survives a process crash)
	// and syncs every Options.FsyncInterval (an OS crash or power loss may
	// lose the last interval of acknowledged writes).
	FsyncInterval Fsync = "interval"
	// FsyncNone acknowledges after write(2) and leaves syncing to the OS.
	FsyncNone Fsync = "none"
)

// ParseFsync checks a policy name.
func ParseFsync(s string) (Fsync, error) {
	switch f := Fsync(s); f {
	case FsyncAlways, FsyncInterval, FsyncNone:
		return f, nil
	}
	return "", fmt.Errorf("fsync %q: want always, interval or none", s)
}

// ErrClosed is returned by every write after Close.
var ErrClosed = errors.New("store is closed")

// ErrFailed wraps the I/O error that stopped the log (a full disk, no file
// descriptors left). The store refuses writes while it is failed and heals
// by itself (see heal): it retries with a bounded backoff, and writes resume
// once space or descriptors are back.
var ErrFailed = errors.New("store failed")

// Options configures Open. The zero value means the defaults.
type Options struct {
	Fsync         Fsync         // default interval
	FsyncInterval time.Duration // default 5ms
	// SegmentBytes rotates the log to a new segment past this size
	// (default 64 MiB).
	SegmentBytes int64
	// SnapshotBytes starts a background snapshot once this many log bytes
	// were written since the last one (default 256 MiB; < 0: never).
	SnapshotBytes int64
	Logger        *slog.Logger
	// OnHealth, when set, is called (from the store's goroutine, never
	// under its lock) when the log fails (with the error) and when it has
	// healed (nil), e.g. to set the daemon's readiness.
	OnHealth func(err error)
}

// Recovery describes what Open found.
type Recovery struct {
	Snapshot      string // snapshot file loaded, "" if none
	Holders       int    // holders restored from it
	Segments      int    // log segments replayed
	Records       int64  // log records replayed
	Events        int64  // events in them
	TruncatedAt   string // "file:offset" of a torn/corrupt tail cut off, "" if none
	DroppedBytes  int64  // bytes cut off there
	Duration      time.Duration
	SnapshotBytes int64 // log bytes replayed (a snapshot follows when large)
}

// Store is a durable front for one core.Aggregator. Every write goes
// through it; reads go to the aggregator directly.
type Store struct {
	dir  string
	agg  *core.Aggregator
	opts Options
	log  *slog.Logger
	lock *os.File

	// mu orders writes: apply to the aggregator, then append the record,
	// both under mu. It also guards the log state below and is the lock of
	// cond, which wakes Wait when written / synced advance.
	mu        sync.Mutex
	cond      *sync.Cond
	chunks    []chunk // records not yet handed to write(2), per segment file
	appended  uint64  // logical end of the log (bytes, across segments)
	written   uint64  // bytes handed to write(2)
	synced    uint64  // bytes covered by fdatasync
	segIndex  uint64  // current segment number
	segBytes  int64   // bytes in the current segment
	sinceSnap int64   // log bytes since the last snapshot
	snapping  bool
	writing   bool   // a flushLocked is doing I/O
	spare     []byte // a drained chunk buffer, reused
	err       error  // the I/O error the log failed with; nil while healthy (see heal)
	closed    bool
	segStart  map[uint64]uint64 // logical offset of each open segment's first record (for heal)
	healWait  time.Duration     // the backoff before the next heal attempt
	healAt    time.Time

	snapKick chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
	bufPool  sync.Pool
}

// chunk is pending bytes for one segment file; closeAfter marks the last
// chunk of a rotated-out segment (synced and closed once written).
type chunk struct {
	f          *os.File
	data       []byte
	end        uint64 // logical offset after data
	closeAfter bool
	newSegment bool // its file was just created: sync the dir entry
}

const (
	walMagic  = "POHWAL01"
	snapMagic = "POHSNAP3"
	// Older snapshots still load (see snapshot.go).
	snapMagicV2 = "POHSNAP2"
	snapMagicV1 = "POHSNAP1"
)

func segName(i uint64) string  { return fmt.Sprintf("wal-%016d.log", i) }
func snapName(i uint64) string { return fmt.Sprintf("snap-%016d.snap", i) }

// Open locks dir (creating it), rebuilds agg (which must be empty) from the
// newest snapshot and the log after it, and starts the flusher. A second
// Open of the same dir, in any process, fails with ErrLocked.
func Open(dir string, agg *core.Aggregator, opts Options) (*Store, *Recovery, error) {
	if opts.Fsync == "" {
		opts.Fsync = FsyncInterval
	}
	if _, err := ParseFsync(string(opts.Fsync)); err != nil {
		return nil, nil, err
	}
	if opts.FsyncInterval <= 0 {
		opts.FsyncInterval = 5 * time.Millisecond
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 64 << 20
	}
	if opts.SnapshotBytes == 0 {
		opts.SnapshotBytes = 256 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if agg.Len() != 0 {
		return nil, nil, errors.New("store.Open: the aggregator must be empty")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, nil, err
	}
	s := &Store{dir: dir, agg: agg, opts: opts, log: opts.Logger, lock: lock,
		snapKick: make(chan struct{}, 1), stop: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	rec, next, err := s.recover()
	if err != nil {
		lock.Close()
		return nil, nil, err
	}
	f, err := s.createSegment(next, true)
	if err != nil {
		lock.Close()
		return nil, nil, err
	}
	s.segIndex = next
	s.segStart = map[uint64]uint64{next: 0}
	s.chunks = []chunk{{f: f}}
	s.sinceSnap = rec.SnapshotBytes
	s.wg.Add(2)
	go s.flusher()
	go s.snapshotter()
	if opts.SnapshotBytes > 0 && s.sinceSnap >= opts.SnapshotBytes {
		s.snapKick <- struct{}{}
	}
	return s, rec, nil
}

// createSegment creates segment i with its magic. With durable, the file
// and the dir are synced now; otherwise (a rotation, under s.mu) the first
// flush of its chunk syncs the dir, outside the lock.
func (s *Store) createSegment(i uint64, durable bool) (*os.File, error) {
	path := filepath.Join(s.dir, segName(i))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create log segment: %w", err)
	}
	if _, err := f.WriteString(walMagic); err != nil {
		f.Close()
		os.Remove(path) // a segment without its magic would read as a torn one
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if !durable {
		return f, nil
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync %s: %w", path, err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Dir is the data dir.
func (s *Store) Dir() string { return s.dir }

func (s *Store) getBuf() []byte {
	if b, ok := s.bufPool.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 4096)
}

func (s *Store) putBuf(b []byte) {
	if cap(b) <= 1<<20 {
		s.bufPool.Put(&b)
	}
}

// Store is a core.Writer: the durable one.
var _ core.Writer = (*Store)(nil)

// Record applies events (all-or-nothing, or partial) at now and queues them
// for the log: they are acknowledged once Wait(ticket) returns nil, so a
// pipelining stream keeps reading while earlier records are written. The
// error is the aggregator's (a *core.ValidationError or *core.BatchError)
// or a store failure.
func (s *Store) Record(now int64, events []core.HoldEvent, o core.RecordOptions) (int, core.Ticket, error) {
	var ok []bool
	if o.Partial {
		for i := range events {
			if events[i].Validate(i) != nil {
				if ok == nil {
					ok = make([]bool, len(events))
					for j := range ok {
						ok[j] = true
					}
				}
				ok[i] = false
			}
		}
	}
	// Encode outside the lock; an invalid batch wastes the encoding only.
	buf := appendEvents(s.getBuf(), now, events, ok)
	s.mu.Lock()
	if err := s.writable(); err != nil {
		s.mu.Unlock()
		s.putBuf(buf)
		return 0, 0, err
	}
	n, err := s.agg.Record(now, events, o)
	var t core.Ticket
	if n > 0 {
		t = s.appendLocked(buf)
	}
	s.mu.Unlock()
	s.putBuf(buf)
	return n, t, err
}

// CloseHold closes every open hold of (token, holder) at `at`, logs it and
// waits until it is durable.
func (s *Store) CloseHold(now int64, token, holder string, at int64) (int, error) {
	buf := appendClose(s.getBuf(), now, token, holder, at)
	defer s.putBuf(buf)
	s.mu.Lock()
	if err := s.writable(); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	n, err := s.agg.CloseHold(now, token, holder, at)
	var t core.Ticket
	if err == nil {
		t = s.appendLocked(buf)
	}
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return n, s.Wait(t)
}

// GC runs the aggregator's TTL GC at now and logs it (GC is deterministic
// given the state and now, so replay repeats it exactly; it is logged even
// when it dropped nothing, because it also credits the live holds that
// ended). Not waited for: a crash can lose it only together with every
// write after it, which replay then never sees either.
func (s *Store) GC(now int64) (int, error) {
	if err := core.ValidateTime(-1, "now", now); err != nil {
		return 0, err // never log a GC record with a bad time
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return 0, err
	}
	n, err := s.agg.GC(now)
	if err == nil {
		s.appendLocked(appendGC(nil, now))
	}
	return n, err
}

func (s *Store) writable() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.err != nil:
		return s.err
	}
	return nil
}

// appendLocked queues rec (copied) for the log. Caller holds s.mu.
func (s *Store) appendLocked(rec []byte) core.Ticket {
	c := &s.chunks[len(s.chunks)-1]
	c.data = append(c.data, rec...)
	s.appended += uint64(len(rec))
	c.end = s.appended
	s.segBytes += int64(len(rec))
	s.sinceSnap += int64(len(rec))
	t := core.Ticket(s.appended)
	if s.segBytes >= s.opts.SegmentBytes {
		if err := s.rotateLocked(); err != nil {
			s.failLocked(err)
		}
	}
	if s.opts.SnapshotBytes > 0 && s.sinceSnap >= s.opts.SnapshotBytes && !s.snapping {
		select {
		case s.snapKick <- struct{}{}:
		default:
		}
	}
	return t
}

// rotateLocked starts a new segment; the flusher syncs and closes the old
// one after writing its last bytes. Caller holds s.mu.
func (s *Store) rotateLocked() error {
	f, err := s.createSegment(s.segIndex+1, false)
	if err != nil {
		return err
	}
	s.chunks[len(s.chunks)-1].closeAfter = true
	s.chunks[len(s.chunks)-1].end = s.appended
	s.chunks = append(s.chunks, chunk{f: f, end: s.appended, newSegment: true})
	s.segIndex++
	s.segStart[s.segIndex] = s.appended
	s.segBytes = 0
	return nil
}

func (s *Store) failLocked(err error) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %w", ErrFailed, err)
		s.log.Error("store failed: writes are refused until it heals (it retries by itself)", "err", err)
		s.healWait, s.healAt = 50*time.Millisecond, time.Now()
		s.notify(s.err)
	}
	s.cond.Broadcast()
}

// notify calls Options.OnHealth off the caller's lock.
func (s *Store) notify(err error) {
	if s.opts.OnHealth != nil {
		go s.opts.OnHealth(err)
	}
}

// Health is nil while the store can write, else why not (ErrFailed).
func (s *Store) Health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// heal brings a failed store back: it cuts the log back to what was
// acknowledged (under the fsync policy: written, or synced with always),
// dropping records that were applied but never acknowledged (their callers
// got an error and may retry: they must not count twice), rebuilds the
// aggregator from the snapshot and the cut log, and opens a new segment.
// Caller holds s.mu with nothing writing; on error the store stays failed
// and the flusher tries again after a longer pause (at most 5 s).
func (s *Store) heal() error {
	for _, c := range s.chunks {
		_ = c.f.Close()
	}
	s.chunks = nil
	ack := s.written
	if s.opts.Fsync == FsyncAlways {
		ack = s.synced
	}
	for idx, start := range s.segStart {
		path := filepath.Join(s.dir, segName(idx))
		switch {
		case start > ack || start == ack && idx != s.firstSegAt(ack):
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			delete(s.segStart, idx)
		default:
			err := os.Truncate(path, int64(len(walMagic))+int64(min(ack, s.segEnd(idx))-start))
			if errors.Is(err, os.ErrNotExist) {
				delete(s.segStart, idx) // compacted away by a snapshot: nothing of it to cut
			} else if err != nil {
				return err
			}
		}
	}
	s.agg.Reset()
	rec, next, err := s.recover()
	if err != nil {
		return err
	}
	f, err := s.createSegment(next, true)
	if err != nil {
		return err
	}
	s.appended, s.written, s.synced = ack, ack, ack
	s.segIndex, s.segBytes = next, 0
	s.segStart = map[uint64]uint64{next: ack}
	s.chunks = []chunk{{f: f, end: ack}}
	s.sinceSnap = rec.SnapshotBytes
	s.err = nil
	s.log.Warn("store healed: writes resume", "records_replayed", rec.Records, "events_replayed", rec.Events,
		"segment", segName(next))
	s.notify(nil)
	return nil
}

// firstSegAt is the lowest open segment starting at logical offset off.
func (s *Store) firstSegAt(off uint64) uint64 {
	first := uint64(0)
	for idx, start := range s.segStart {
		if start == off && (first == 0 || idx < first) {
			first = idx
		}
	}
	return first
}

// segEnd is where the segment after idx starts (the end of idx's records),
// or the log's end.
func (s *Store) segEnd(idx uint64) uint64 {
	if next, ok := s.segStart[idx+1]; ok {
		return next
	}
	return s.appended
}

// Wait blocks until the record of t is durable under the policy: written
// to the OS (interval, none) or synced (always). Group commit by leader:
// if no write is in progress, the waiter writes (and, for always, syncs)
// everything queued so far itself, so a lone request pays no goroutine
// hand-off; requests that arrive meanwhile are covered by the next leader.
func (s *Store) Wait(t core.Ticket) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		done := s.written
		if s.opts.Fsync == FsyncAlways {
			done = s.synced
		}
		switch {
		case uint64(t) <= done:
			return nil
		case s.err != nil:
			return s.err
		case s.closed && len(s.chunks) == 0:
			return ErrClosed
		case !s.writing:
			s.flushLocked(s.opts.Fsync == FsyncAlways)
		default:
			s.cond.Wait()
		}
	}
}

// flushLocked writes every queued record (one write(2) per segment), closes
// rotated-out segments after syncing them, and syncs the current one when
// syncNow. Caller holds s.mu with s.writing false; mu is released during
// the I/O, and writing keeps other flushers out meanwhile.
func (s *Store) flushLocked(syncNow bool) {
	s.writing = true
	work := s.chunks
	cur := work[len(work)-1]
	// The current segment keeps a fresh chunk for new appends.
	s.chunks = []chunk{{f: cur.f, data: s.spare[:0], end: cur.end}}
	s.spare = nil
	target, written, synced := s.appended, s.written, s.synced
	s.mu.Unlock()

	var err error
	syncedTo := synced
	var spare []byte
	for _, c := range work {
		if c.newSegment && err == nil {
			err = syncDir(s.dir)
		}
		if len(c.data) > 0 && err == nil {
			_, err = c.f.Write(c.data)
		}
		if c.closeAfter && err == nil {
			if err = c.f.Sync(); err == nil {
				syncedTo = c.end
				err = c.f.Close()
			}
		}
		if cap(c.data) > cap(spare) && cap(c.data) <= 16<<20 {
			spare = c.data
		}
	}
	if err == nil && syncNow && target > syncedTo {
		if err = cur.f.Sync(); err == nil {
			syncedTo = target
		}
	}

	s.mu.Lock()
	s.writing = false
	if spare != nil && s.spare == nil {
		s.spare = spare
	}
	if err != nil {
		s.failLocked(err)
	} else {
		if target > written {
			s.written = target
		}
		if syncedTo > s.synced {
			s.synced = syncedTo
		}
	}
	s.cond.Broadcast()
}

// flusher covers what no waiter does, every FsyncInterval: records nobody
// waits for (GC), the interval policy's periodic sync, and the final flush
// after stop (Close has already refused new writes).
func (s *Store) flusher() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.FsyncInterval)
	defer t.Stop()
	for {
		stopping := false
		syncNow := s.opts.Fsync != FsyncNone
		select {
		case <-t.C:
		case <-s.stop:
			stopping, syncNow = true, true
		}
		s.mu.Lock()
		for s.writing {
			s.cond.Wait()
		}
		if s.err != nil && !stopping && !s.snapping && time.Now().After(s.healAt) {
			if err := s.heal(); err != nil {
				s.healWait = min(2*s.healWait, 5*time.Second)
				s.healAt = time.Now().Add(s.healWait)
				s.log.Warn("store still failed; retrying", "err", err, "retry_in", s.healWait.String())
			}
		}
		if s.err == nil && (stopping || s.opts.Fsync != FsyncInterval) {
			// Final flush, or always/none: write (and sync) in one go.
			if s.appended > s.written || len(s.chunks) > 1 || (syncNow && s.appended > s.synced) {
				s.flushLocked(syncNow)
			}
		} else if s.err == nil {
			// interval: write what is queued, then sync without holding
			// writing, so leaders keep writing during the fsync.
			if s.appended > s.written || len(s.chunks) > 1 {
				s.flushLocked(false)
			}
			if !s.writing && s.written > s.synced {
				f, target := s.chunks[len(s.chunks)-1].f, s.written
				s.mu.Unlock()
				err := f.Sync()
				s.mu.Lock()
				// ErrClosed: a rotation closed f after syncing all of it.
				if err != nil && !errors.Is(err, os.ErrClosed) {
					s.failLocked(fmt.Errorf("sync: %w", err))
				} else if target > s.synced {
					s.synced = target
				}
			}
		}
		s.mu.Unlock()
		if stopping {
			return
		}
	}
}

// Close refuses new writes, flushes and syncs the log, takes a final
// snapshot when the log has grown since the last one (so the next start is
// fast), and releases the lock. Idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait() // flusher and snapshotter are done
	s.mu.Lock()
	err := s.err
	since := s.sinceSnap
	s.mu.Unlock()
	if err == nil && since > 0 && s.opts.SnapshotBytes > 0 {
		err = s.snapshot()
	}
	s.mu.Lock()
	for _, c := range s.chunks {
		if cerr := c.f.Close(); cerr != nil && err == nil && !errors.Is(cerr, os.ErrClosed) {
			err = cerr
		}
	}
	s.chunks = nil
	s.cond.Broadcast()
	s.mu.Unlock()
	if lerr := s.lock.Close(); lerr != nil && err == nil {
		err = lerr
	}
	return err
}

// waitWritten blocks until the log is written up to t (or failed).
func (s *Store) waitWritten(t uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.written < t {
		if s.err != nil {
			return s.err
		}
		s.cond.Wait()
	}
	return nil
}

// listing is what a data dir holds.
type listing struct {
	segs    []uint64
	snaps   []uint64
	tmps    []string // our interrupted snapshots (snap-K.snap.tmp)
	unknown []string // anything else: left alone, named in a warning
}

var (
	segRE  = regexp.MustCompile(`^wal-(\d{16})\.log$`)
	snapRE = regexp.MustCompile(`^snap-(\d{16})\.snap$`)
	tmpRE  = regexp.MustCompile(`^snap-\d{16}\.snap\.tmp$`)
)

func list(dir string) (listing, error) {
	var l listing
	ents, err := os.ReadDir(dir)
	if err != nil {
		return l, fmt.Errorf("read data dir: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if m := segRE.FindStringSubmatch(name); m != nil && e.Type().IsRegular() {
			i, _ := strconv.ParseUint(m[1], 10, 64)
			l.segs = append(l.segs, i)
		} else if m := snapRE.FindStringSubmatch(name); m != nil && e.Type().IsRegular() {
			i, _ := strconv.ParseUint(m[1], 10, 64)
			l.snaps = append(l.snaps, i)
		} else if tmpRE.MatchString(name) {
			l.tmps = append(l.tmps, name)
		} else if name != "LOCK" {
			l.unknown = append(l.unknown, name)
		}
	}
	sort.Slice(l.segs, func(a, b int) bool { return l.segs[a] < l.segs[b] })
	sort.Slice(l.snaps, func(a, b int) bool { return l.snaps[a] < l.snaps[b] })
	return l, nil
}
