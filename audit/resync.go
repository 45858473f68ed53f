package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/poh-holdmetrics/poh-holdmetrics/store"
)

// resync makes the audit hold exactly the store's records, then lets writes
// go (it runs before the first write, and after any failure with writes
// refused):
//
//   - the store's newest snapshot is located in the audit (its entry gives
//     its seq); an audit that is empty starts from it; a snapshot the
//     audit lacks, with no record after it, is one taken just before a
//     crash (after every record before it was mirrored): it is recorded at
//     the audit's last seq; any other unknown snapshot is ErrDiverged;
//   - records the store has and the audit lacks (durable, but a crash or a
//     failure came before they were mirrored) are mirrored;
//   - records the audit has and the store lacks can only be GC records
//     (mirrored before the store flushed them; GC is deterministic, so
//     they are applied again); anything else missing is ErrDiverged;
//   - the newest audited group is compared with the store's records (a
//     cheap alignment check; `holdmetricsd verify-audit` compares all).
func (w *Writer) resync(ctx context.Context) error {
	w.mu.Lock()
	pend, storeFailed := w.pending, errors.Is(w.err, store.ErrFailed)
	w.mu.Unlock()
	if !storeFailed {
		// The audit failed, the store did not: its tickets are good, and
		// waiting for the last one puts everything before it in the log.
		for i := len(pend) - 1; i >= 0; i-- {
			if pend[i].t != 0 {
				if err := w.st.Wait(pend[i].t); err != nil {
					return err
				}
				break
			}
		}
	}
	if err := w.st.Health(); err != nil {
		return err
	}
	type localRec struct {
		pos string
		rec []byte
	}
	var recs []localRec
	var size int64
	name, digest, err := w.st.Read(ctx, func(pos string, rec []byte) error {
		recs = append(recs, localRec{pos, append([]byte(nil), rec...)})
		size += int64(len(rec))
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: read the store: %w", err)
	}
	snaps, err := w.log.snaps(ctx)
	if err != nil {
		return err
	}
	last, ok, err := w.log.lastGroup(ctx)
	if err != nil {
		return err
	}
	var audited int64
	if ok {
		audited = last.last()
	}

	var base int64
	if name != "" {
		found := false
		for _, e := range snaps {
			if e.name == name {
				if e.digest != digest {
					return fmt.Errorf("%w: the store's snapshot %s is not the one audited at record %d (SHA-256 %x, audited %x)",
						ErrDiverged, name, e.seq, digest, e.digest)
				}
				base, found = e.seq, true
			}
		}
		if !found {
			switch {
			case audited == 0 && len(snaps) == 0:
				base = 0
			case len(recs) == 0:
				base = audited
				w.l.Warn("audit: the store's newest snapshot is not in the audit; it was taken right before a crash, "+
					"after every earlier record was audited: recording it", "snapshot", name, "seq", base)
			default:
				return fmt.Errorf("%w: the store's snapshot %s is not in the audit, and %d records follow it "+
					"(run holdmetricsd verify-audit)", ErrDiverged, name, len(recs))
			}
			if err := w.log.putSnap(ctx, snapEntry{seq: base, name: name, digest: digest}); err != nil {
				return err
			}
		}
	}
	local := base + int64(len(recs))

	// Alignment: the newest audited group against the store.
	if ok {
		for seq := max(last.first, base+1); seq <= min(last.last(), local); seq++ {
			r := recs[seq-base-1]
			if d := compare(r.rec, last.items[seq-last.first]); d != "" {
				return fmt.Errorf("%w: record %d (%s): %s (run holdmetricsd verify-audit)", ErrDiverged, seq, r.pos, d)
			}
		}
	}
	// Audited records the store lost: GC records only.
	for seq := local + 1; seq <= audited; {
		g, ok, err := w.log.groupAt(ctx, seq)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("audit: record %d is missing from the audit", seq)
		}
		for ; seq <= g.last(); seq++ {
			it := g.items[seq-g.first]
			d, derr := store.Decode(it.data)
			if it.hashed || derr != nil || d.Kind != "gc" {
				return fmt.Errorf("%w: the store ends at record %d, the audit at %d: audited writes are missing "+
					"from the store (restore it from a backup; run holdmetricsd verify-audit)", ErrDiverged, local, audited)
			}
			if _, err := w.st.GC(d.Now); err != nil {
				return fmt.Errorf("audit: apply the lost GC record %d again: %w", seq, err)
			}
			recs = append(recs, localRec{"(applied again)", it.data})
			local++
			w.l.Warn("audit: a GC record the store lost in a crash was applied again", "seq", seq, "now", d.Now)
		}
	}
	// Records the audit lacks.
	mirroredNow := 0
	for seq := audited + 1; seq <= local; {
		g := group{first: seq}
		gsize := 0
		for ; seq <= local && len(g.items) < 4096 && gsize < maxGroupBytes/2; seq++ {
			it := itemOf(recs[seq-base-1].rec)
			g.items = append(g.items, it)
			gsize += len(it.data) + 8
		}
		if err := w.log.putGroup(ctx, g); err != nil {
			return err
		}
		mirroredNow += len(g.items)
	}
	if mirroredNow > 0 {
		w.l.Warn("audit: mirrored records the store had and the audit lacked (written before a crash or a failure)",
			"records", mirroredNow, "first", audited+1, "last", local)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	w.epochEnd[w.epoch] = local
	w.epoch++
	w.seq, w.mirrored = local, local
	w.pending = nil
	w.sinceSnap = size
	if w.err != nil {
		w.l.Warn("audit: resynced with the store: writes resume", "records", local)
	}
	w.err = nil
	w.cond.Broadcast()
	return nil
}
