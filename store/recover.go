package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// ErrConfigMismatch: the snapshot was written by an aggregator whose state
// cannot be carried into this one (another campaign window, or no history
// where history is needed).
var ErrConfigMismatch = errors.New("snapshot does not match the aggregator's window/history settings")

// compatible says whether a state written under `was` can be imported into
// an aggregator configured as `now`. History may be dropped, never invented.
func compatible(was, now core.StateConfig) error {
	if was.Exact != now.Exact {
		mode := map[bool]string{false: "float", true: "exact"}
		return fmt.Errorf("%w: it was written in %s mode and the aggregator is in %s mode (scores and weights "+
			"are kept differently); use the same mode, or a new data dir", ErrConfigMismatch, mode[was.Exact], mode[now.Exact])
	}
	if was.Window != now.Window {
		return fmt.Errorf("%w: it was written with campaign window %s and the aggregator has %s "+
			"(closed scores are clipped when recorded); use the same window, or a new data dir",
			ErrConfigMismatch, windowText(was.Window), windowText(now.Window))
	}
	if now.History && !was.History {
		return fmt.Errorf("%w: it was written without history, so window queries would miss every hold "+
			"recorded before it; start without history, or with a new data dir", ErrConfigMismatch)
	}
	return nil
}

func windowText(w core.Window) string {
	if w == core.All {
		return "none"
	}
	return w.String()
}

// ErrCorrupt is returned by Open when a log record is damaged where a crash
// cannot have torn it: anywhere but at the end of the last segment. Open then
// changes nothing on disk; Repair cuts the log there (keeping a copy of
// what it cuts), an explicit operator action.
var ErrCorrupt = errors.New("log is corrupt")

// recover loads the newest snapshot and replays the log after it into the
// aggregator. A torn tail (what a crash leaves: an incomplete last record, or
// zeros, at the end of the last segment) is cut off with a warning; any other
// damage is ErrCorrupt, naming the file and offset, with nothing changed on
// disk. Files the store does not own are left alone and named in a warning.
// It returns the number of the segment to write next.
func (s *Store) recover() (*Recovery, uint64, error) {
	t0 := time.Now()
	rec := &Recovery{}
	l, err := list(s.dir)
	if err != nil {
		return nil, 0, err
	}
	if len(l.unknown) > 0 {
		s.log.Warn("the data dir holds files the store does not own: left alone", "dir", s.dir, "files", l.unknown)
	}
	// Removed only once recovery succeeded: an interrupted snapshot, and
	// what an interrupted compaction left (snapshots and segments below
	// the newest snapshot).
	var stale []string
	for _, t := range l.tmps {
		stale = append(stale, filepath.Join(s.dir, t))
	}
	k := uint64(1)
	if n := len(l.snaps); n > 0 {
		k = l.snaps[n-1]
		path := filepath.Join(s.dir, snapName(k))
		holders, m, cfg, err := readSnapshot(path, k)
		if err != nil {
			return nil, 0, fmt.Errorf("snapshot %s is unreadable (%w); the log before it was compacted "+
				"away, so starting without it would lose data: restore it, or move it aside to start "+
				"from the remaining log only", path, err)
		}
		if err := compatible(cfg, s.agg.StateConfig()); err != nil {
			return nil, 0, fmt.Errorf("snapshot %s: %w", path, err)
		}
		if err := s.agg.Import(holders, m); err != nil {
			return nil, 0, fmt.Errorf("snapshot %s: %w", path, err)
		}
		rec.Snapshot, rec.Holders = snapName(k), len(holders)
		for _, i := range l.snaps[:n-1] {
			stale = append(stale, filepath.Join(s.dir, snapName(i)))
		}
	}
	var segs []uint64
	for _, i := range l.segs {
		if i < k {
			stale = append(stale, filepath.Join(s.dir, segName(i)))
			continue
		}
		segs = append(segs, i)
	}
	next := k
	if len(segs) > 0 {
		if rec.Snapshot == "" && segs[0] != 1 {
			return nil, 0, fmt.Errorf("log starts at %s with no snapshot: earlier segments are missing", segName(segs[0]))
		}
		next = segs[len(segs)-1] + 1
	}
	var scratch []core.HoldEvent
	var torn *damage
	for j, i := range segs {
		if j > 0 && i != segs[j-1]+1 {
			return nil, 0, fmt.Errorf("log segment %s is missing", segName(segs[j-1]+1))
		}
		path := filepath.Join(s.dir, segName(i))
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, 0, fmt.Errorf("read log: %w", err)
		}
		rec.Segments++
		d := scanSegment(data, func(p []byte, off, n int) error {
			var err error
			if scratch, err = s.replay(p, scratch); err != nil {
				if errors.Is(err, errCorrupt) {
					return err
				}
				return fmt.Errorf("%s at offset %d: replaying a logged write failed: %w", path, off, err)
			}
			rec.Records++
			if p[0] == kindEvents {
				rec.Events += int64(len(scratch))
			}
			rec.SnapshotBytes += int64(n)
			return nil
		})
		if d.fatal != nil {
			return nil, 0, d.fatal
		}
		if d.reason == nil {
			continue
		}
		d.path, d.seg = path, i
		if j != len(segs)-1 || !d.torn {
			return nil, 0, s.corruptError(d, segs[j+1:])
		}
		torn = &d
	}
	if torn != nil {
		rec.TruncatedAt = fmt.Sprintf("%s:%d", segName(torn.seg), torn.off)
		rec.DroppedBytes = int64(torn.size - torn.off)
		s.log.Warn("log tail is torn (a crash cut the last write short): recovered everything before it and cut it off",
			"file", torn.path, "offset", torn.off, "dropped_bytes", rec.DroppedBytes, "reason", torn.reason.Error())
		next = torn.seg + 1
		if torn.off < len(walMagic) {
			if err := os.Remove(torn.path); err != nil {
				return nil, 0, fmt.Errorf("remove torn segment: %w", err)
			}
			next = torn.seg // its number is free again: no gap in the log
		} else if err := os.Truncate(torn.path, int64(torn.off)); err != nil {
			return nil, 0, fmt.Errorf("truncate torn tail: %w", err)
		}
	}
	for _, p := range stale {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("could not remove a stale file", "file", p, "err", err)
		}
	}
	rec.Duration = time.Since(t0)
	return rec, next, nil
}

// damage is where a segment's records stop being readable.
type damage struct {
	path   string
	seg    uint64
	off    int   // offset of the first bad byte (len(walMagic) or more, unless the magic is bad)
	size   int   // the segment's size
	reason error // nil: the segment is whole
	torn   bool  // what a crash leaves at the end of a file (see tornAt)
	fatal  error // a record decoded but could not be applied
}

// scanSegment walks a segment's records, calling apply for each, and says
// where (and how) it stopped.
func scanSegment(data []byte, apply func(p []byte, off, n int) error) damage {
	d := damage{size: len(data)}
	if !strings.HasPrefix(string(data[:min(len(data), len(walMagic))]), walMagic) {
		d.reason = fmt.Errorf("%w: bad segment magic", errCorrupt)
		d.torn = len(data) < len(walMagic) || allZero(data)
		return d
	}
	off := len(walMagic)
	for off < len(data) {
		p, n, err := nextRecord(data[off:])
		if err == nil && apply != nil {
			err = apply(p, off, n)
		}
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				d.fatal = err
				return d
			}
			d.off, d.reason, d.torn = off, err, tornAt(data[off:])
			return d
		}
		off += n
	}
	d.off = off
	return d
}

// tornAt reports whether a bad record at the start of rest is what a crash
// leaves at the end of a file: a header or payload cut short (the record
// reaches the end of the file), or zeros to the end. Anything followed by
// more data is damage a crash cannot explain.
func tornAt(rest []byte) bool {
	if len(rest) < headerSize || allZero(rest) {
		return true
	}
	size := uint64(binary.LittleEndian.Uint32(rest))
	return size > 0 && headerSize+size >= uint64(len(rest))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// corruptError explains damage recovery must not cut on its own.
func (s *Store) corruptError(d damage, later []uint64) error {
	after := int64(d.size - d.off)
	for _, x := range later {
		if st, err := os.Stat(filepath.Join(s.dir, segName(x))); err == nil {
			after += st.Size()
		}
	}
	return fmt.Errorf("%w: %s at offset %d (%v); the %d bytes after it (%d later segments) hold acknowledged "+
		"writes, so the store does not start and has changed nothing on disk. Restore the data dir from a "+
		"backup, or cut the log at that point, keeping a copy of what is cut: holdmetricsd repair --data-dir %s",
		ErrCorrupt, d.path, d.off, d.reason, after, len(later), s.dir)
}

// RepairReport says what Repair cut.
type RepairReport struct {
	CutAt     string   // "file:offset" of the first damaged record, "" when the log was whole
	CutBytes  int64    // bytes moved out of the log
	KeptAs    []string // where they are now (files beside the log, *.cut)
	Truncated string   // the segment that now ends at the cut
}

// Repair cuts a data dir's log at its first damaged record, so that the
// store starts from everything before it: the damaged segment's bytes from
// there on are kept in "wal-N.log.cut-OFFSET", later segments are renamed
// "wal-M.log.cut" (the store ignores them, and warns about them at every
// start until they are removed). It takes the dir's lock, like Open.
func Repair(dir string) (*RepairReport, error) {
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	l, err := list(dir)
	if err != nil {
		return nil, err
	}
	k := uint64(1)
	if n := len(l.snaps); n > 0 {
		k = l.snaps[n-1]
	}
	rep := &RepairReport{}
	var segs []uint64
	for _, i := range l.segs {
		if i >= k {
			segs = append(segs, i)
		}
	}
	for j, i := range segs {
		path := filepath.Join(dir, segName(i))
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		d := scanSegment(data, nil)
		if d.reason == nil {
			continue
		}
		rep.CutAt = fmt.Sprintf("%s:%d", segName(i), d.off)
		keep := fmt.Sprintf("%s.cut-%d", path, d.off)
		if err := os.WriteFile(keep, data[d.off:], 0o644); err != nil {
			return nil, fmt.Errorf("keep the cut bytes: %w", err)
		}
		rep.KeptAs = append(rep.KeptAs, filepath.Base(keep))
		rep.CutBytes += int64(len(data) - d.off)
		for _, x := range segs[j+1:] {
			p := filepath.Join(dir, segName(x))
			if st, err := os.Stat(p); err == nil {
				rep.CutBytes += st.Size()
			}
			if err := os.Rename(p, p+".cut"); err != nil {
				return nil, err
			}
			rep.KeptAs = append(rep.KeptAs, segName(x)+".cut")
		}
		if d.off < len(walMagic) {
			if err := os.Remove(path); err != nil {
				return nil, err
			}
		} else {
			if err := os.Truncate(path, int64(d.off)); err != nil {
				return nil, err
			}
			rep.Truncated = segName(i)
		}
		return rep, syncDir(dir)
	}
	return rep, nil
}

// replay applies one logged record with its original "now".
func (s *Store) replay(p []byte, scratch []core.HoldEvent) ([]core.HoldEvent, error) {
	body := p[1:]
	switch p[0] {
	case kindEvents:
		now, evs, err := decodeEvents(body, scratch)
		if err != nil {
			return evs, err
		}
		_, err = s.agg.Record(now, evs, core.RecordOptions{})
		return evs, err
	case kindClose:
		now, token, holder, at, err := decodeClose(body)
		if err != nil {
			return scratch, err
		}
		_, err = s.agg.CloseHold(now, token, holder, at)
		return scratch[:0], err
	case kindGC:
		now, err := decodeGC(body)
		if err != nil {
			return scratch, err
		}
		_, err = s.agg.GC(now)
		return scratch[:0], err
	}
	return scratch, fmt.Errorf("%w: unknown record kind %d", errCorrupt, p[0])
}
