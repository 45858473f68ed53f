package audit

import (
	"context"
	"fmt"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
	"github.com/poh-holdmetrics/poh-holdmetrics/store/mongostore"
)

// Reader is a store's content as the audit sees it: its newest snapshot
// and the records after it.
type Reader interface {
	// Read calls fn with each record after the newest snapshot, in order,
	// with its position for humans ("wal-N.log:offset", "record 17"), and
	// returns that snapshot's name and SHA-256 ("" when there is none).
	Read(ctx context.Context, fn func(pos string, rec []byte) error) (snapshot string, digest [32]byte, err error)
}

// Store is a store the Writer mirrors. Its own snapshots must be off (the
// Writer takes them, between two mirrored writes, so that each snapshot's
// place in the sequence is known).
type Store interface {
	core.Writer
	Reader
	// Snapshot writes a snapshot of the state after every write so far
	// and returns its name and SHA-256.
	Snapshot() (name string, digest [32]byte, err error)
	// Health is nil while the store can write.
	Health() error
}

// LogDir reads an embedded log's data dir (store.ReadLog).
type LogDir string

// Read implements Reader.
func (d LogDir) Read(_ context.Context, fn func(pos string, rec []byte) error) (string, [32]byte, error) {
	v, err := store.ReadLog(string(d), fn)
	return v.Snapshot, v.Digest, err
}

// Embedded is the embedded log's store under the audit (opened with
// SnapshotBytes < 0).
func Embedded(s *store.Store) Store { return embedded{s, LogDir(s.Dir())} }

type embedded struct {
	*store.Store
	LogDir
}

func (e embedded) Snapshot() (string, [32]byte, error) {
	if err := e.Store.Snapshot(); err != nil {
		return "", [32]byte{}, err
	}
	v, err := store.ReadLog(e.Store.Dir(), func(string, []byte) error { return nil })
	return v.Snapshot, v.Digest, err
}

// Mongo is a MongoDB store under the audit (opened with SnapshotBytes < 0).
func Mongo(s *mongostore.Store) Store { return mongo{s} }

type mongo struct{ *mongostore.Store }

func (m mongo) Snapshot() (string, [32]byte, error) {
	info, err := m.Store.Snapshot()
	return mongoSnapName(info), info.SHA256, err
}

func (m mongo) Read(ctx context.Context, fn func(pos string, rec []byte) error) (string, [32]byte, error) {
	info, err := m.Store.Newest(ctx, mongoRead(fn))
	return mongoSnapName(info), info.SHA256, err
}

// MongoReader reads a MongoDB store without taking its lease.
func MongoReader(r *mongostore.Reader) Reader { return mongoReader{r} }

type mongoReader struct{ r *mongostore.Reader }

func (m mongoReader) Read(ctx context.Context, fn func(pos string, rec []byte) error) (string, [32]byte, error) {
	info, err := m.r.Newest(ctx, mongoRead(fn))
	return mongoSnapName(info), info.SHA256, err
}

func mongoRead(fn func(pos string, rec []byte) error) func(int64, []byte) error {
	return func(seq int64, rec []byte) error { return fn(fmt.Sprintf("records._id %d", seq), rec) }
}

func mongoSnapName(info mongostore.SnapshotInfo) string {
	if info.Seq == 0 {
		return ""
	}
	return fmt.Sprintf("snapshots._id %d", info.Seq)
}
