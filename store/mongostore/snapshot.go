package mongostore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/poh-holdmetrics/poh-holdmetrics/store"
)

// chunkBytes is one snapshot_chunks document's data (documents are
// limited to 16 MiB).
const chunkBytes = 8 << 20

// snapshotter takes a snapshot whenever appendLocked asks for one.
func (s *Store) snapshotter() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.snapKick:
			if _, err := s.snapshot(); err != nil {
				s.log.Error("snapshot failed; the records keep everything, will retry", "err", err)
			}
		}
	}
}

// SnapshotInfo names a snapshot: the seq of the last record it covers and
// the SHA-256 of its bytes.
type SnapshotInfo struct {
	Seq    int64
	SHA256 [32]byte
}

// Snapshot writes a snapshot of the state after every record applied so
// far (after they are acknowledged), then deletes the records and
// snapshots it makes redundant. A snapshot already taken at the same seq
// is returned as is.
func (s *Store) Snapshot() (SnapshotInfo, error) { return s.snapshot() }

func (s *Store) snapshot() (SnapshotInfo, error) {
	t0 := time.Now()
	s.mu.Lock()
	if s.snapping || s.err != nil {
		err := s.err
		s.mu.Unlock()
		if err == nil {
			err = fmt.Errorf("a snapshot is being written")
		}
		return SnapshotInfo{}, err
	}
	holders, m, err := s.agg.Export()
	cfg := s.agg.StateConfig()
	seq := s.seq
	if err != nil {
		s.mu.Unlock()
		return SnapshotInfo{}, err
	}
	s.snapping = true
	before := s.sinceSnap
	s.sinceSnap = 0
	s.mu.Unlock()
	ok := false
	defer func() {
		s.mu.Lock()
		s.snapping = false
		if !ok {
			s.sinceSnap += before
		}
		s.mu.Unlock()
	}()

	data, err := store.EncodeSnapshot(holders, m, cfg)
	if err != nil {
		return SnapshotInfo{}, err
	}
	info := SnapshotInfo{Seq: seq, SHA256: sha256.Sum256(data)}
	// Only acknowledged records under a snapshot: a write whose insert
	// failed must not survive in one.
	if err := s.waitAcked(seq); err != nil {
		return SnapshotInfo{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.OpTimeout+time.Duration(len(data)>>20)*time.Second)
	defer cancel()
	var existing snapHeader
	err = s.snaps.FindOne(ctx, bson.D{{Key: "_id", Value: seq}}).Decode(&existing)
	if err == nil {
		copy(info.SHA256[:], existing.SHA256)
		ok = true
		return info, nil
	} else if err != mongo.ErrNoDocuments {
		return SnapshotInfo{}, fmt.Errorf("snapshot %d: %w", seq, err)
	}
	if _, err := s.chunks.DeleteMany(ctx, bson.D{{Key: "seq", Value: seq}}); err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot %d: %w", seq, err)
	}
	parts := 0
	for off := 0; off < len(data) || parts == 0; off += chunkBytes {
		end := min(off+chunkBytes, len(data))
		doc := chunkDoc{ID: chunkID(seq, parts), Seq: seq, Part: parts, Data: data[off:end]}
		if _, err := s.chunks.InsertOne(ctx, doc); err != nil {
			return SnapshotInfo{}, fmt.Errorf("snapshot %d chunk %d: %w", seq, parts, err)
		}
		parts++
	}
	hdr := snapHeader{Seq: seq, Parts: parts, Bytes: int64(len(data)), SHA256: info.SHA256[:], Created: time.Now()}
	if _, err := s.snaps.InsertOne(ctx, hdr); err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot %d header: %w", seq, err)
	}
	ok = true
	// The snapshot is whole: what it covers can go (a failure here leaves
	// garbage that the next snapshot removes, never a gap).
	for _, del := range []struct {
		c *mongo.Collection
		f bson.D
	}{
		{s.snaps, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: seq}}}}},
		{s.chunks, bson.D{{Key: "seq", Value: bson.D{{Key: "$lt", Value: seq}}}}},
		{s.recs, bson.D{{Key: "_id", Value: bson.D{{Key: "$lte", Value: seq}}}}},
	} {
		if _, err := del.c.DeleteMany(ctx, del.f); err != nil {
			s.log.Warn("snapshot written; removing what it covers failed (the next snapshot retries)", "err", err)
			break
		}
	}
	s.log.Info("snapshot written", "seq", seq, "holders", len(holders), "bytes", len(data), "chunks", parts,
		"record_bytes_compacted", before, "duration_ms", time.Since(t0).Milliseconds())
	return info, nil
}

// waitAcked blocks until every record up to seq is acknowledged.
func (s *Store) waitAcked(seq int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.acked < seq {
		if s.err != nil {
			return s.err
		}
		if s.closed && !s.flushing && len(s.queue) == 0 {
			return store.ErrClosed
		}
		s.cond.Wait()
	}
	return nil
}
