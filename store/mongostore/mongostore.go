// Package mongostore is holdmetricsd's shared store on MongoDB: the
// embedded log's promise (every acknowledged write survives a crash, and
// replay rebuilds the aggregator bit for bit) kept in a database that other
// tools can read, back up and replicate.
//
// Collections of the database (the path of the mongodb:// URI):
//
//	records          {_id: seq, rec: <binary>}   one document per accepted write, seq = 1, 2, 3...
//	snapshots        {_id: seq, parts, bytes, sha256, created}   the state after every record <= seq
//	snapshot_chunks  {_id: "<seq>/<part>", seq, part, data}      its bytes (package store's snapshot format)
//	lease            {_id: "writer", owner, host, pid, expires}  who may write
//
// rec is the embedded log's record (store.EventsRecord, CloseRecord,
// GCRecord) and replay is store.Replay with each record's original now, so
// both stores rebuild the same state from the same writes. Order is kept as
// in the log: a write is applied to the aggregator and queued under one
// mutex, and one flusher inserts the queue in seq order (ordered
// InsertMany, group commit). A write is acknowledged once its insert was
// acknowledged under the write concern: the URI's w / journal when it sets
// them, else w=majority with j=true (on a standalone server: written to its
// journal). A snapshot's header document is inserted after all its chunks,
// so a snapshot is visible whole or not at all; records and snapshots it
// makes redundant are then deleted.
//
// One writer per database: Open takes the lease document (ErrLeased while
// another live process holds it) and renews it every LeaseTTL/3; a
// process that dies stops renewing and its lease expires after LeaseTTL.
// A writer that cannot renew stops writing before its lease can expire,
// and _id = seq makes any write racing a new owner fail as a duplicate.
//
// Store is safe for concurrent use; its flusher, snapshotter and lease
// goroutines stop in Close.
package mongostore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
)

// DefaultDatabase is used when the URI names none.
const DefaultDatabase = "holdmetrics"

// ErrLeased is returned by Open while another process holds the database's
// lease; the error text names it (host, pid) and says when it expires.
var ErrLeased = errors.New("the database is in use by another holdmetricsd")

// ErrLeaseLost: another process took the lease over (this one could not
// renew it in time). The store stops writing for good; restart it.
var ErrLeaseLost = errors.New("mongostore: the lease was lost to another process")

// Options configures Open. The zero value means the defaults.
type Options struct {
	// LeaseTTL is how long a lease lasts without renewal (default 15s):
	// a dead owner blocks a new one that long. Clocks of the machines
	// sharing a database must agree to well within it.
	LeaseTTL time.Duration
	// SnapshotBytes starts a snapshot once this many record bytes were
	// written since the last one (default 256 MiB; < 0: never).
	SnapshotBytes int64
	// OpTimeout bounds each database operation (default 10s).
	OpTimeout time.Duration
	// MaxBatchBytes bounds one InsertMany (default 8 MiB).
	MaxBatchBytes int
	Logger        *slog.Logger
	// OnHealth, when set, is called (never under the store's lock) when
	// writes start failing (with the error) and when they resume (nil).
	OnHealth func(err error)
}

// Recovery describes what Open found.
type Recovery struct {
	Database string
	Snapshot int64 // seq of the snapshot loaded, 0 if none
	Holders  int   // holders restored from it
	Records  int64 // records replayed after it
	Events   int64 // events in them
	Duration time.Duration
}

// Store is a durable front for one core.Aggregator on MongoDB. Every
// write goes through it; reads go to the aggregator directly.
type Store struct {
	agg    *core.Aggregator
	opts   Options
	log    *slog.Logger
	client *mongo.Client
	db     *mongo.Database
	colls
	owner string
	name  string // the URI without its password, for messages

	// mu orders writes (apply, then queue, under mu) and guards the state
	// below; cond (on mu) wakes Wait when acked advances or the store fails.
	mu        sync.Mutex
	cond      *sync.Cond
	queue     []bson.D // records not yet handed to the flusher
	queueSeq  int64    // seq of queue[0]
	seq       int64    // seq of the last applied record
	acked     int64    // seq of the last acknowledged record
	epoch     uint64   // +1 at every heal: tickets of dropped records stay dropped
	epochEnd  map[uint64]int64
	sinceSnap int64
	snapping  bool
	flushing  bool
	leaseTill time.Time // writes stop before this (last renewal + TTL - margin)
	err       error     // why writes are refused; nil while healthy
	lost      bool      // the lease is gone: no healing
	closed    bool
	healWait  time.Duration
	healAt    time.Time

	kick     chan struct{}
	snapKick chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Store is a core.Writer.
var _ core.Writer = (*Store)(nil)

// Ticket layout: epoch in the top 16 bits, seq below.
const epochShift = 48

// Open connects to uri (mongodb://host:port/db; the database defaults to
// DefaultDatabase), takes the database's lease, rebuilds agg (which must be
// empty) from the newest snapshot and the records after it, and starts
// the flusher. ctx bounds connecting and recovery.
func Open(ctx context.Context, uri string, agg *core.Aggregator, opts Options) (*Store, *Recovery, error) {
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 15 * time.Second
	}
	if opts.SnapshotBytes == 0 {
		opts.SnapshotBytes = 256 << 20
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 10 * time.Second
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 8 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if agg.Len() != 0 {
		return nil, nil, errors.New("mongostore.Open: the aggregator must be empty")
	}
	name := Redact(uri)
	client, db, err := connect(uri, opts.OpTimeout)
	if err != nil {
		return nil, nil, err
	}
	dbName := db.Name()
	s := &Store{agg: agg, opts: opts, log: opts.Logger, client: client, db: db, name: name,
		colls: collsOf(db), owner: newOwner(), epochEnd: map[uint64]int64{},
		kick: make(chan struct{}, 1), snapKick: make(chan struct{}, 1), stop: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	fail := func(err error) (*Store, *Recovery, error) {
		dctx, cancel := context.WithTimeout(context.Background(), opts.OpTimeout)
		defer cancel()
		_ = client.Disconnect(dctx)
		return nil, nil, fmt.Errorf("store %s: %w", name, err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		return fail(fmt.Errorf("cannot reach the server: %w", err))
	}
	if err := s.acquire(ctx); err != nil {
		return fail(err)
	}
	// Renewals start before recovery, which may take longer than the lease.
	s.wg.Add(1)
	go s.renewer()
	rec, err := s.recover(ctx)
	if err == nil {
		err = s.Health() // the lease may have been lost meanwhile
	}
	if err != nil {
		close(s.stop)
		s.wg.Wait()
		s.release()
		return fail(err)
	}
	rec.Database = dbName
	s.wg.Add(2)
	go s.flusher()
	go s.snapshotter()
	s.mu.Lock()
	s.maybeSnapshotLocked() // a long replay is worth a snapshot now
	s.mu.Unlock()
	return s, rec, nil
}

func ptr[T any](v T) *T { return &v }

// Redact is uri without its password (for logs and errors).
func Redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "mongodb://(unparsable URI)"
	}
	return u.Redacted()
}

func newOwner() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

func (s *Store) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opts.OpTimeout)
}

// recover loads the newest complete snapshot and replays the records
// after it, in seq order; a gap in seq is an error (records are deleted
// only below a snapshot). Chunks of a snapshot that never got its header
// (a crash while writing it) are removed.
func (s *Store) recover(ctx context.Context) (*Recovery, error) {
	t0 := time.Now()
	rec := &Recovery{}
	var hdr snapHeader
	err := s.snaps.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&hdr)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
	case err != nil:
		return nil, fmt.Errorf("read snapshots: %w", err)
	default:
		holders, err := s.loadSnapshot(ctx, hdr)
		if err != nil {
			return nil, err
		}
		rec.Snapshot, rec.Holders = hdr.Seq, holders
	}
	if _, err := s.chunks.DeleteMany(ctx, bson.D{{Key: "seq", Value: bson.D{{Key: "$gt", Value: hdr.Seq}}}}); err != nil {
		return nil, fmt.Errorf("remove an incomplete snapshot: %w", err)
	}
	last, n, events, size, err := s.replayAfter(ctx, hdr.Seq)
	if err != nil {
		return nil, err
	}
	rec.Records, rec.Events = n, events
	s.seq, s.acked, s.queueSeq = last, last, last+1
	s.sinceSnap = size // a long replay is worth a snapshot soon
	rec.Duration = time.Since(t0)
	return rec, nil
}

// snapHeader is a snapshots document.
type snapHeader struct {
	Seq     int64     `bson:"_id"`
	Parts   int       `bson:"parts"`
	Bytes   int64     `bson:"bytes"`
	SHA256  []byte    `bson:"sha256"`
	Created time.Time `bson:"created"`
}

type chunkDoc struct {
	ID   string `bson:"_id"`
	Seq  int64  `bson:"seq"`
	Part int    `bson:"part"`
	Data []byte `bson:"data"`
}

func chunkID(seq int64, part int) string { return fmt.Sprintf("%020d/%06d", seq, part) }

// snapshotBytes reads snapshot seq's bytes and checks them against its
// header.
func (c *colls) snapshotBytes(ctx context.Context, hdr snapHeader) ([]byte, error) {
	cur, err := c.chunks.Find(ctx, bson.D{{Key: "seq", Value: hdr.Seq}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", hdr.Seq, err)
	}
	defer cur.Close(ctx)
	data := make([]byte, 0, hdr.Bytes)
	part := 0
	for cur.Next(ctx) {
		var c chunkDoc
		if err := cur.Decode(&c); err != nil {
			return nil, fmt.Errorf("snapshot %d: %w", hdr.Seq, err)
		}
		if c.Part != part {
			return nil, fmt.Errorf("snapshot %d: chunk %d missing", hdr.Seq, part)
		}
		data = append(data, c.Data...)
		part++
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", hdr.Seq, err)
	}
	sum := sha256.Sum256(data)
	if part != hdr.Parts || int64(len(data)) != hdr.Bytes || string(sum[:]) != string(hdr.SHA256) {
		return nil, fmt.Errorf("snapshot %d is damaged (%d of %d chunks, %d of %d bytes, or a checksum mismatch); "+
			"the records before it were deleted, so starting without it would lose data", hdr.Seq, part, hdr.Parts,
			len(data), hdr.Bytes)
	}
	return data, nil
}

func (s *Store) loadSnapshot(ctx context.Context, hdr snapHeader) (int, error) {
	data, err := s.snapshotBytes(ctx, hdr)
	if err != nil {
		return 0, err
	}
	holders, m, cfg, err := store.DecodeSnapshot(data)
	if err != nil {
		return 0, fmt.Errorf("snapshot %d: %w", hdr.Seq, err)
	}
	if err := store.Compatible(cfg, s.agg.StateConfig()); err != nil {
		return 0, fmt.Errorf("snapshot %d: %w", hdr.Seq, err)
	}
	if err := s.agg.Import(holders, m); err != nil {
		return 0, fmt.Errorf("snapshot %d: %w", hdr.Seq, err)
	}
	return len(holders), nil
}

type recordDoc struct {
	Seq int64  `bson:"_id"`
	Rec []byte `bson:"rec"`
}

// replayAfter applies every record after seq `after` in order and returns
// the last seq, the number of records, of events and of record bytes.
func (s *Store) replayAfter(ctx context.Context, after int64) (last, n, events, size int64, err error) {
	last = after
	err = s.records(ctx, after, func(seq int64, rec []byte) error {
		k, err := store.Replay(s.agg, rec)
		if err != nil {
			return fmt.Errorf("record %d: replaying a logged write failed: %w", seq, err)
		}
		last, n, events, size = seq, n+1, events+int64(k), size+int64(len(rec))
		return nil
	})
	return last, n, events, size, err
}

// records calls fn for every record after seq `after`, in seq order (rec
// is only valid during the call). A gap in seq is an error.
func (c *colls) records(ctx context.Context, after int64, fn func(seq int64, rec []byte) error) error {
	cur, err := c.recs.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return fmt.Errorf("read records: %w", err)
	}
	defer cur.Close(ctx)
	want := after + 1
	for cur.Next(ctx) {
		var d recordDoc
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("record after %d: %w", want-1, err)
		}
		if d.Seq != want {
			return fmt.Errorf("%w: record %d is missing (the next one is %d)", store.ErrCorrupt, want, d.Seq)
		}
		if err := fn(d.Seq, d.Rec); err != nil {
			return err
		}
		want++
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read records: %w", err)
	}
	return nil
}

// Record applies events at now and queues their record: acknowledged once
// Wait(ticket) returns nil. The error is the aggregator's or the store's
// (wrapping store.ErrFailed or store.ErrClosed).
func (s *Store) Record(now int64, events []core.HoldEvent, o core.RecordOptions) (int, core.Ticket, error) {
	rec := store.EventsRecord(now, events, o) // outside the lock
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return 0, 0, err
	}
	n, err := s.agg.Record(now, events, o)
	var t core.Ticket
	if n > 0 {
		t = s.appendLocked(rec)
	}
	return n, t, err
}

// CloseHold closes every open hold of (token, holder) at `at` and waits
// until its record is acknowledged.
func (s *Store) CloseHold(now int64, token, holder string, at int64) (int, error) {
	rec := store.CloseRecord(now, token, holder, at)
	s.mu.Lock()
	if err := s.writable(); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	n, err := s.agg.CloseHold(now, token, holder, at)
	var t core.Ticket
	if err == nil {
		t = s.appendLocked(rec)
	}
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return n, s.Wait(t)
}

// GC runs the aggregator's TTL GC at now and queues its record (not waited
// for, as in the embedded log: losing it loses every later write too).
func (s *Store) GC(now int64) (int, error) {
	if err := core.ValidateTime(-1, "now", now); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return 0, err
	}
	n, err := s.agg.GC(now)
	if err == nil {
		s.appendLocked(store.GCRecord(now))
	}
	return n, err
}

func (s *Store) writable() error {
	switch {
	case s.closed:
		return store.ErrClosed
	case s.err != nil:
		return s.err
	}
	return nil
}

// appendLocked queues rec as the next seq. Caller holds s.mu.
func (s *Store) appendLocked(rec []byte) core.Ticket {
	s.seq++
	s.queue = append(s.queue, bson.D{{Key: "_id", Value: s.seq}, {Key: "rec", Value: rec}})
	s.sinceSnap += int64(len(rec))
	select {
	case s.kick <- struct{}{}:
	default:
	}
	s.maybeSnapshotLocked()
	return core.Ticket(s.epoch<<epochShift | uint64(s.seq))
}

func (s *Store) maybeSnapshotLocked() {
	if s.opts.SnapshotBytes > 0 && s.sinceSnap >= s.opts.SnapshotBytes && !s.snapping {
		select {
		case s.snapKick <- struct{}{}:
		default:
		}
	}
}

// Wait blocks until the record of t is acknowledged by the server, or
// returns why it never will be.
func (s *Store) Wait(t core.Ticket) error {
	if t == 0 {
		return nil
	}
	epoch, seq := uint64(t)>>epochShift, int64(uint64(t)&(1<<epochShift-1))
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case epoch < s.epoch:
			if seq <= s.epochEnd[epoch] {
				return nil
			}
			return fmt.Errorf("%w: the write was dropped when the store recovered from a failure", store.ErrFailed)
		case seq <= s.acked:
			return nil
		case s.err != nil:
			return s.err
		case s.closed && !s.flushing && len(s.queue) == 0:
			return store.ErrClosed
		}
		s.cond.Wait()
	}
}

// Health is nil while the store can write, else why not.
func (s *Store) Health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// LastSeq is the seq of the last acknowledged record.
func (s *Store) LastSeq() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

func (s *Store) failLocked(err error) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: mongodb: %w", store.ErrFailed, err)
		s.log.Error("store failed: writes are refused until it heals (it retries by itself)", "err", err)
		s.healWait, s.healAt = 50*time.Millisecond, time.Now()
		s.notify(s.err)
	}
	s.cond.Broadcast()
}

func (s *Store) notify(err error) {
	if s.opts.OnHealth != nil {
		go s.opts.OnHealth(err)
	}
}

// flusher inserts queued records in seq order, one InsertMany at a time
// (everything queued meanwhile goes in the next one), and heals a failed
// store. It drains the queue after stop.
func (s *Store) flusher() {
	defer s.wg.Done()
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	stopping := false
	for {
		if !stopping {
			select {
			case <-s.kick:
			case <-retry.C:
			case <-s.stop:
				stopping = true
			}
		}
		s.mu.Lock()
		if s.err != nil && !s.lost && !stopping && !s.snapping && time.Now().After(s.healAt) {
			if err := s.heal(); err != nil {
				s.healWait = min(2*s.healWait, 5*time.Second)
				s.healAt = time.Now().Add(s.healWait)
				s.log.Warn("store still failed; retrying", "err", err, "retry_in", s.healWait.String())
			}
		}
		for s.err == nil && len(s.queue) > 0 {
			s.flushLocked()
		}
		s.mu.Unlock()
		if stopping {
			return
		}
	}
}

// flushLocked inserts the head of the queue (up to MaxBatchBytes). Caller
// holds s.mu; it is released during the insert.
func (s *Store) flushLocked() {
	if time.Now().After(s.leaseTill) {
		s.failLocked(errors.New("the lease could not be renewed in time; writes stop before it can expire"))
		return
	}
	size, n := 0, 0
	for n < len(s.queue) && (n == 0 || size < s.opts.MaxBatchBytes) {
		size += len(s.queue[n][1].Value.([]byte)) + 32
		n++
	}
	docs := make([]any, n)
	for i := range docs {
		docs[i] = s.queue[i]
	}
	first, last := s.queueSeq, s.queueSeq+int64(n)-1
	s.flushing = true
	s.mu.Unlock()
	ctx, cancel := s.opCtx()
	_, err := s.recs.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
	cancel()
	s.mu.Lock()
	s.flushing = false
	if err != nil {
		if mongo.IsDuplicateKeyError(err) {
			err = fmt.Errorf("records %d..%d already exist: another process writes this database (%w)", first, last, err)
		}
		s.failLocked(err)
		return
	}
	s.queue = s.queue[n:]
	if len(s.queue) == 0 {
		s.queue = nil
	}
	s.queueSeq = last + 1
	s.acked = last
	s.cond.Broadcast()
}

// heal brings a failed store back: it deletes what a failed insert may
// have left past the last acknowledged record (those writes were refused:
// their callers may retry, and they must not count twice), rebuilds the
// aggregator from the database, and resumes. Caller holds s.mu with no
// insert in flight.
func (s *Store) heal() error {
	ctx, cancel := s.opCtx()
	defer cancel()
	till, err := s.renew(ctx)
	if errors.Is(err, ErrLeaseLost) {
		s.lost = true
		s.err = fmt.Errorf("%w: %w", store.ErrFailed, err)
		s.cond.Broadcast()
		return err
	} else if err != nil {
		return err
	}
	s.leaseTill = till
	if _, err := s.recs.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: s.acked}}}}); err != nil {
		return fmt.Errorf("drop unacknowledged records: %w", err)
	}
	s.agg.Reset()
	acked := s.acked
	rec, err := s.recover(ctx)
	if err != nil {
		return err
	}
	if s.acked != acked {
		return fmt.Errorf("the database holds records up to %d after the cut at %d", s.acked, acked)
	}
	s.epochEnd[s.epoch] = acked
	s.epoch++
	s.queue = nil
	s.err = nil
	s.log.Warn("store healed: writes resume", "records_replayed", rec.Records, "events_replayed", rec.Events)
	s.notify(nil)
	s.cond.Broadcast()
	return nil
}

// Close refuses new writes, inserts what is queued, takes a final snapshot
// when records were written since the last one (so the next start is
// fast), releases the lease and disconnects. Idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	err := s.err
	since := s.sinceSnap
	s.cond.Broadcast()
	s.mu.Unlock()
	if err == nil && since > 0 && s.opts.SnapshotBytes > 0 {
		_, err = s.snapshot()
	}
	s.release()
	ctx, cancel := s.opCtx()
	defer cancel()
	if derr := s.client.Disconnect(ctx); derr != nil && err == nil {
		err = derr
	}
	return err
}

// String names the store (its URI without the password).
func (s *Store) String() string { return s.name }

// Database is the database's name.
func (s *Store) Database() string { return s.db.Name() }
