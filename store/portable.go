package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// This file gives the other stores (store/mongostore) and the audit log
// (audit) what they share with this one: the snapshot format as bytes, and
// a data dir's log read back record by record.

// EncodeSnapshot is an exported state in the snapshot file format (see
// snapshot.go). It goes through a temporary file so that the format keeps
// one encoder and one decoder (snapshot.go writes and reads files).
func EncodeSnapshot(holders []core.HolderState, m core.MetricsState, cfg core.StateConfig) ([]byte, error) {
	dir, err := os.MkdirTemp("", "holdmetrics-snap-")
	if err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	defer os.RemoveAll(dir)
	if _, err := writeSnapshot(dir, 1, holders, m, cfg); err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(dir, snapName(1)))
}

// DecodeSnapshot reads what EncodeSnapshot wrote: the state and the
// StateConfig it was written under (check it with Compatible).
func DecodeSnapshot(b []byte) ([]core.HolderState, core.MetricsState, core.StateConfig, error) {
	dir, err := os.MkdirTemp("", "holdmetrics-snap-")
	if err != nil {
		return nil, core.MetricsState{}, core.StateConfig{}, fmt.Errorf("decode snapshot: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, snapName(1))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, core.MetricsState{}, core.StateConfig{}, fmt.Errorf("decode snapshot: %w", err)
	}
	return readSnapshot(path, 1)
}

// LogView is what a data dir holds, as ReadLog found it.
type LogView struct {
	Snapshot string   // the newest snapshot's file name, "" if none
	Digest   [32]byte // its SHA-256
	Records  int      // records after it
	Torn     string   // "file:offset" of an incomplete last record (not acknowledged, skipped), "" if none
}

// ReadLog calls fn with every record after dir's newest snapshot, in log
// order, with its position ("wal-N.log:offset"); rec is only valid during
// the call. It takes no lock and changes nothing, so it can read the log of
// a running store: a file that a concurrent snapshot removes makes it fail
// (read again). An incomplete record at the end of the last segment is what
// a write in progress (or a crash) leaves: it is skipped and named in
// LogView.Torn. Any other damage is ErrCorrupt.
func ReadLog(dir string, fn func(pos string, rec []byte) error) (LogView, error) {
	var v LogView
	l, err := list(dir)
	if err != nil {
		return v, err
	}
	k := uint64(1)
	if n := len(l.snaps); n > 0 {
		k = l.snaps[n-1]
		data, err := os.ReadFile(filepath.Join(dir, snapName(k)))
		if err != nil {
			return v, changed(err)
		}
		v.Snapshot, v.Digest = snapName(k), sha256.Sum256(data)
	}
	var segs []uint64
	for _, i := range l.segs {
		if i >= k {
			segs = append(segs, i)
		}
	}
	for j, i := range segs {
		if j > 0 && i != segs[j-1]+1 {
			return v, fmt.Errorf("%w: log segment %s is missing", ErrCorrupt, segName(segs[j-1]+1))
		}
		path := filepath.Join(dir, segName(i))
		data, err := os.ReadFile(path)
		if err != nil {
			return v, changed(err)
		}
		d := scanSegment(data, func(p []byte, off, _ int) error {
			v.Records++
			return fn(fmt.Sprintf("%s:%d", segName(i), off), p)
		})
		if d.fatal != nil {
			return v, d.fatal
		}
		if d.reason != nil {
			if j != len(segs)-1 || !d.torn {
				return v, fmt.Errorf("%w: %s at offset %d: %v", ErrCorrupt, path, d.off, d.reason)
			}
			v.Torn = fmt.Sprintf("%s:%d", segName(i), d.off)
		}
	}
	return v, nil
}

func changed(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("the log changed while it was read (a snapshot compacted it): read it again: %w", err)
	}
	return err
}
