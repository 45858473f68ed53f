package store

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// A snapshot file snap-K.snap holds the aggregator's exact state after every
// log segment numbered below K:
//
//	"POHSNAP3" | header record | one record per holder | end record
//
// header: K | holders | accepted | evicted | histogram flag [| dur counts | dur sum | score counts | score sum]
//
//	| window start | window end | history flag | exact flag
//
// holder: id | updated_at | tokens × (id | closed sum | closed comp | seconds | events | updated_at
//
//	| [exact sum, 48 bytes |] live × (start | has end | [end |] weight [| wei, 32 bytes])
//	| history × (start | end | weight [| wei]))   (the bracketed exact fields in exact mode only)
//
// end:    holders (again: a truncated file never passes for a complete one)
//
// Older versions still load. Version 2 ("POHSNAP2") wrote open holds only
// (start | weight: no end), before closed holds could still be live.
// Version 1 ("POHSNAP1", written before windows and history) has neither
// the window/history fields nor the history lists either: the state of an
// aggregator without a campaign window or history.
//
// The state depends on the aggregator's campaign window (closed scores are
// clipped when recorded) and on whether it keeps history, so recovery
// refuses a snapshot written under another window, or without history for
// an aggregator that needs it (window queries would silently miss every
// hold before the snapshot).
// It is written to a temporary file, synced, renamed and the dir synced, and
// only then are the segments and snapshots below K deleted.

// snapshotter takes a snapshot whenever appendLocked asks for one.
func (s *Store) snapshotter() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.snapKick:
			if err := s.snapshot(); err != nil {
				s.log.Error("snapshot failed; the log keeps everything, will retry", "err", err)
			}
		}
	}
}

// Snapshot writes a snapshot now and deletes the log it makes redundant.
func (s *Store) Snapshot() error { return s.snapshot() }

func (s *Store) snapshot() error {
	t0 := time.Now()
	s.mu.Lock()
	if s.snapping || s.err != nil {
		s.mu.Unlock()
		return s.err
	}
	final := s.closed // Close: the flusher has stopped and everything is written
	var k uint64
	if final {
		k = s.segIndex + 1
	} else {
		if err := s.rotateLocked(); err != nil {
			s.failLocked(err)
			s.mu.Unlock()
			return err
		}
		k = s.segIndex
	}
	rotAt := s.appended
	holders, metrics, err := s.agg.Export()
	cfg := s.agg.StateConfig()
	if err != nil {
		s.mu.Unlock()
		return err
	}
	s.snapping = true
	before := s.sinceSnap
	s.sinceSnap = 0
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		s.snapping = false
		s.mu.Unlock()
	}()
	size, err := writeSnapshot(s.dir, k, holders, metrics, cfg)
	if err != nil {
		s.mu.Lock()
		s.sinceSnap += before
		s.mu.Unlock()
		return err
	}
	if !final {
		if err := s.waitWritten(rotAt); err != nil {
			return err
		}
	}
	l, err := list(s.dir)
	if err != nil {
		return err
	}
	for _, i := range l.segs {
		if i < k {
			_ = os.Remove(filepath.Join(s.dir, segName(i)))
		}
	}
	for _, i := range l.snaps {
		if i < k {
			_ = os.Remove(filepath.Join(s.dir, snapName(i)))
		}
	}
	s.log.Info("snapshot written", "file", snapName(k), "holders", len(holders), "bytes", size,
		"log_bytes_compacted", before, "duration_ms", time.Since(t0).Milliseconds())
	return nil
}

func writeSnapshot(dir string, k uint64, holders []core.HolderState, m core.MetricsState, cfg core.StateConfig) (int64, error) {
	final := filepath.Join(dir, snapName(k))
	tmp := final + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, fmt.Errorf("create snapshot: %w", err)
	}
	defer os.Remove(tmp) // a no-op after the rename
	w := bufio.NewWriterSize(f, 1<<20)
	var size int64
	put := func(rec []byte) {
		n, _ := w.Write(rec)
		size += int64(n)
	}
	put([]byte(snapMagic))
	b, off := beginRecord(nil, kindSnapHeader)
	b = binary.AppendUvarint(b, k)
	b = binary.AppendUvarint(b, uint64(len(holders)))
	b = binary.AppendUvarint(b, m.Accepted)
	b = binary.AppendUvarint(b, m.Evicted)
	if m.DurationCounts == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		for _, part := range []struct {
			counts []uint64
			sum    float64
		}{{m.DurationCounts, m.DurationSum}, {m.ScoreCounts, m.ScoreSum}} {
			b = binary.AppendUvarint(b, uint64(len(part.counts)))
			for _, c := range part.counts {
				b = binary.AppendUvarint(b, c)
			}
			b = appendFloat(b, part.sum)
		}
	}
	b = binary.AppendVarint(b, cfg.Window.Start)
	b = binary.AppendVarint(b, cfg.Window.End)
	b = append(b, boolByte(cfg.History))
	b = append(b, boolByte(cfg.Exact))
	put(endRecord(b, off))
	for i := range holders {
		h := &holders[i]
		b, off = beginRecord(b[:0], kindSnapHolder)
		b = appendString(b, h.HolderID)
		b = binary.AppendVarint(b, h.UpdatedAt)
		b = binary.AppendUvarint(b, uint64(len(h.Tokens)))
		for j := range h.Tokens {
			t := &h.Tokens[j]
			b = appendString(b, t.TokenID)
			b = appendFloat(b, t.ClosedSum)
			b = appendFloat(b, t.ClosedComp)
			if cfg.Exact {
				x := t.ClosedExact.Bytes()
				b = append(b, x[:]...)
			}
			b = binary.AppendVarint(b, t.Seconds)
			b = binary.AppendVarint(b, t.Events)
			b = binary.AppendVarint(b, t.UpdatedAt)
			b = binary.AppendUvarint(b, uint64(len(t.Live)))
			for _, l := range t.Live {
				b = binary.AppendVarint(b, l.Start)
				b = append(b, boolByte(l.HasEnd))
				if l.HasEnd {
					b = binary.AppendVarint(b, l.End)
				}
				b = appendFloat(b, l.Weight)
				if cfg.Exact {
					b = append(b, l.Wei[:]...)
				}
			}
			b = binary.AppendUvarint(b, uint64(len(t.History)))
			for _, iv := range t.History {
				b = binary.AppendVarint(b, iv.Start)
				b = binary.AppendVarint(b, iv.End)
				b = appendFloat(b, iv.Weight)
				if cfg.Exact {
					b = append(b, iv.Wei[:]...)
				}
			}
		}
		put(endRecord(b, off))
	}
	b, off = beginRecord(b[:0], kindSnapEnd)
	b = binary.AppendUvarint(b, uint64(len(holders)))
	put(endRecord(b, off))
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, fmt.Errorf("write snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, fmt.Errorf("sync snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("close snapshot: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return 0, fmt.Errorf("rename snapshot: %w", err)
	}
	return size, syncDir(dir)
}

// cloneWei copies an exact weight out of the file's bytes (nil stays nil).
func cloneWei(w *core.Wei) *core.Wei {
	if w == nil {
		return nil
	}
	c := *w
	return &c
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// readSnapshot decodes a whole snapshot file (version 1, 2 or 3); any damage is
// an error (a snapshot is complete or unusable).
func readSnapshot(path string, k uint64) ([]core.HolderState, core.MetricsState, core.StateConfig, error) {
	var m core.MetricsState
	cfg := core.StateConfig{Window: core.All}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, m, cfg, err
	}
	var version int
	switch magic := string(data[:min(len(data), len(snapMagic))]); magic {
	case snapMagic:
		version = 3
	case snapMagicV2:
		version = 2
	case snapMagicV1:
		version = 1
	default:
		return nil, m, cfg, fmt.Errorf("%w: not a snapshot (bad magic)", errCorrupt)
	}
	b := data[len(snapMagic):]
	next := func(kind byte) (*reader, error) {
		p, n, err := nextRecord(b)
		if err != nil {
			return nil, err
		}
		b = b[n:]
		if p[0] != kind {
			return nil, fmt.Errorf("%w: record kind %d, want %d", errCorrupt, p[0], kind)
		}
		return &reader{b: p[1:]}, nil
	}
	r, err := next(kindSnapHeader)
	if err != nil {
		return nil, m, cfg, err
	}
	if got := r.uvarint(); got != k && r.err == nil {
		return nil, m, cfg, fmt.Errorf("%w: header says segment %d, file name %d", errCorrupt, got, k)
	}
	count := r.uvarint()
	m.Accepted = r.uvarint()
	m.Evicted = r.uvarint()
	if r.byte() == 1 {
		for part := 0; part < 2; part++ {
			n := r.uvarint()
			if n > 64 {
				r.fail()
				break
			}
			counts := make([]uint64, n)
			for i := range counts {
				counts[i] = r.uvarint()
			}
			sum := r.float()
			if part == 0 {
				m.DurationCounts, m.DurationSum = counts, sum
			} else {
				m.ScoreCounts, m.ScoreSum = counts, sum
			}
		}
	}
	if version >= 2 {
		cfg.Window = core.Window{Start: r.varint(), End: r.varint()}
		cfg.History = r.byte() == 1
		if version >= 3 {
			cfg.Exact = r.byte() == 1
		}
	}
	if err := r.done(); err != nil {
		return nil, m, cfg, err
	}
	if count > uint64(len(b))/8 {
		return nil, m, cfg, fmt.Errorf("%w: %d holders cannot fit in %d bytes", errCorrupt, count, len(b))
	}
	holders := make([]core.HolderState, 0, count)
	for i := uint64(0); i < count; i++ {
		r, err := next(kindSnapHolder)
		if err != nil {
			return nil, m, cfg, fmt.Errorf("holder %d: %w", i, err)
		}
		h := core.HolderState{HolderID: strings.Clone(r.str()), UpdatedAt: r.varint()}
		nt := r.uvarint()
		if nt > uint64(len(r.b)) {
			r.fail()
		}
		for j := uint64(0); j < nt && r.err == nil; j++ {
			t := core.TokenState{TokenID: strings.Clone(r.str()), ClosedSum: r.float(), ClosedComp: r.float()}
			if cfg.Exact {
				t.ClosedExact = r.int()
			}
			t.Seconds, t.Events, t.UpdatedAt = r.varint(), r.varint(), r.varint()
			no := r.uvarint()
			if no > uint64(len(r.b)) {
				r.fail()
			}
			for o := uint64(0); o < no && r.err == nil; o++ {
				l := core.LiveHoldState{Start: r.varint()}
				if version >= 3 {
					switch r.byte() {
					case 0:
					case 1:
						l.End, l.HasEnd = r.varint(), true
					default:
						r.fail()
					}
				}
				l.Weight = r.float()
				if cfg.Exact {
					l.Wei = cloneWei(r.wei())
				}
				t.Live = append(t.Live, l)
			}
			if version >= 2 {
				nh := r.uvarint()
				if nh > uint64(len(r.b)) {
					r.fail()
				}
				if nh > 0 && r.err == nil {
					t.History = make([]core.IntervalState, 0, nh)
				}
				for o := uint64(0); o < nh && r.err == nil; o++ {
					iv := core.IntervalState{Start: r.varint(), End: r.varint(), Weight: r.float()}
					if cfg.Exact {
						iv.Wei = cloneWei(r.wei())
					}
					t.History = append(t.History, iv)
				}
			}
			h.Tokens = append(h.Tokens, t)
		}
		if err := r.done(); err != nil {
			return nil, m, cfg, fmt.Errorf("holder %d: %w", i, err)
		}
		holders = append(holders, h)
	}
	r, err = next(kindSnapEnd)
	if err != nil {
		return nil, m, cfg, fmt.Errorf("end record: %w", err)
	}
	if got := r.uvarint(); r.done() != nil || got != count {
		return nil, m, cfg, fmt.Errorf("%w: end record disagrees with header", errCorrupt)
	}
	if len(b) != 0 {
		return nil, m, cfg, fmt.Errorf("%w: %d bytes after the end record", errCorrupt, len(b))
	}
	return holders, m, cfg, nil
}
