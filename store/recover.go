package store

import (
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

// recover loads the newest snapshot and replays the log after it into the
// aggregator. A torn or corrupt record ends the log: the segment is cut
// there, later segments are renamed *.corrupt, and it is logged. It returns
// the number of the segment to write next.
func (s *Store) recover() (*Recovery, uint64, error) {
	t0 := time.Now()
	rec := &Recovery{}
	if tmps, _ := filepath.Glob(filepath.Join(s.dir, "*.tmp")); len(tmps) > 0 {
		for _, t := range tmps {
			_ = os.Remove(t) // an interrupted snapshot
		}
	}
	l, err := list(s.dir)
	if err != nil {
		return nil, 0, err
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
			_ = os.Remove(filepath.Join(s.dir, snapName(i)))
		}
	}
	var segs []uint64
	for _, i := range l.segs {
		if i < k {
			_ = os.Remove(filepath.Join(s.dir, segName(i))) // compacted, deletion was interrupted
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
		off, bad := len(walMagic), error(nil)
		if !strings.HasPrefix(string(data[:min(len(data), len(walMagic))]), walMagic) {
			off, bad = 0, fmt.Errorf("%w: bad segment magic", errCorrupt)
		}
		for bad == nil && off < len(data) {
			p, n, err := nextRecord(data[off:])
			if err != nil {
				bad = err
				break
			}
			if scratch, err = s.replay(p, scratch); err != nil {
				if errors.Is(err, errCorrupt) {
					bad = err
					break
				}
				return nil, 0, fmt.Errorf("%s at offset %d: replaying a logged write failed: %w", path, off, err)
			}
			rec.Records++
			if p[0] == kindEvents {
				rec.Events += int64(len(scratch))
			}
			off += n
			rec.SnapshotBytes += int64(n)
		}
		if bad == nil {
			continue
		}
		// Everything before off is recovered; cut the rest off.
		rec.TruncatedAt = fmt.Sprintf("%s:%d", segName(i), off)
		rec.DroppedBytes = int64(len(data) - off)
		var later []string
		for _, x := range segs[j+1:] {
			p := filepath.Join(s.dir, segName(x))
			if st, err := os.Stat(p); err == nil {
				rec.DroppedBytes += st.Size()
			}
			_ = os.Rename(p, p+".corrupt")
			later = append(later, segName(x)+".corrupt")
		}
		level := s.log.Warn
		if len(later) > 0 || off < len(walMagic) {
			level = s.log.Error
		}
		level("log tail is torn or corrupt: recovered everything before it and cut it off",
			"file", path, "offset", off, "dropped_bytes", rec.DroppedBytes, "reason", bad.Error(),
			"renamed", later)
		if off < len(walMagic) {
			if err := os.Remove(path); err != nil {
				return nil, 0, fmt.Errorf("remove unreadable segment: %w", err)
			}
		} else if err := os.Truncate(path, int64(off)); err != nil {
			return nil, 0, fmt.Errorf("truncate torn tail: %w", err)
		}
		next = i + 1
		break
	}
	rec.Duration = time.Since(t0)
	return rec, next, nil
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
