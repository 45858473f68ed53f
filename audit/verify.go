package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
)

// Report is what Verify found.
type Report struct {
	Snapshot   string // the store's newest snapshot, "" if none
	From, To   int64  // the seqs of the store's records compared (From > To: none)
	Audited    int64  // the audit's last seq
	Divergence string // the first divergence, "" when the store matches its audit
}

// Verify compares a store with its audit: its newest snapshot with the
// audited one of the same name (SHA-256), then each record after it with
// the audited record of the same seq (whole, or by SHA-256 for large
// ones), every audit value read with immudb's proofs checked (VerifiedGet).
// The first divergence is in the report, and the error is ErrDiverged.
func Verify(ctx context.Context, log *Log, r Reader) (*Report, error) {
	var recs []struct {
		pos string
		rec []byte
	}
	name, digest, err := r.Read(ctx, func(pos string, rec []byte) error {
		recs = append(recs, struct {
			pos string
			rec []byte
		}{pos, append([]byte(nil), rec...)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the store: %w", err)
	}
	rep := &Report{Snapshot: name}
	snaps, err := log.snaps(ctx)
	if err != nil {
		return nil, err
	}
	last, ok, err := log.lastGroup(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		rep.Audited = last.last()
	}
	diverged := func(format string, args ...any) (*Report, error) {
		rep.Divergence = fmt.Sprintf(format, args...)
		return rep, fmt.Errorf("%w: %s", ErrDiverged, rep.Divergence)
	}
	var base int64
	if name != "" {
		found := false
		for _, e := range snaps {
			if e.name == name {
				if e.digest != digest {
					return diverged("snapshot %s differs from the one audited at record %d (SHA-256 %x, audited %x)",
						name, e.seq, digest, e.digest)
				}
				base, found = e.seq, true
			}
		}
		if !found {
			return diverged("snapshot %s is not in the audit (%d snapshots are)", name, len(snaps))
		}
	}
	rep.From, rep.To = base+1, base+int64(len(recs))
	var g group
	for i, r := range recs {
		seq := base + 1 + int64(i)
		if len(g.items) == 0 || seq > g.last() {
			var ok bool
			if g, ok, err = log.groupAt(ctx, seq); err != nil {
				return nil, err
			} else if !ok {
				return diverged("record %d (%s) and the %d after it are not in the audit, which ends at record %d "+
					"(written but not yet audited: the daemon audits them when it starts again; or added to the store)",
					seq, r.pos, len(recs)-i-1, rep.Audited)
			}
		}
		if d := compare(r.rec, g.items[seq-g.first]); d != "" {
			return diverged("record %d (%s): %s", seq, r.pos, d)
		}
	}
	if rep.To < rep.Audited {
		return diverged("the store ends at record %d and the audit at record %d: audited writes are missing from the store",
			rep.To, rep.Audited)
	}
	return rep, nil
}

// compare says how a store's record differs from its audited item ("" when
// it does not).
func compare(rec []byte, it item) string {
	if it.hashed {
		sum := sha256.Sum256(rec)
		if bytes.Equal(sum[:], it.data) {
			return ""
		}
		return fmt.Sprintf("its SHA-256 is %x, the audited record's %x", sum, it.data)
	}
	if bytes.Equal(rec, it.data) {
		return ""
	}
	got, err1 := store.Decode(rec)
	want, err2 := store.Decode(it.data)
	switch {
	case err1 != nil:
		return fmt.Sprintf("the store's record does not decode (%v)", err1)
	case err2 != nil:
		return fmt.Sprintf("the audited record does not decode (%v)", err2)
	case got.Kind != want.Kind:
		return fmt.Sprintf("a %s record in the store, a %s record in the audit", got.Kind, want.Kind)
	case got.Now != want.Now:
		return fmt.Sprintf("now %d in the store, %d in the audit", got.Now, want.Now)
	}
	switch got.Kind {
	case "events":
		if len(got.Events) != len(want.Events) {
			return fmt.Sprintf("%d events in the store, %d in the audit", len(got.Events), len(want.Events))
		}
		for i := range got.Events {
			if d := eventDiff(&got.Events[i], &want.Events[i]); d != "" {
				return fmt.Sprintf("event %d of %d: %s", i, len(got.Events), d)
			}
		}
	case "close":
		return fmt.Sprintf("close of (%q, %q) at %d in the store, of (%q, %q) at %d in the audit",
			got.Token, got.Holder, got.At, want.Token, want.Holder, want.At)
	}
	return "the bytes differ"
}

func eventDiff(g, w *core.HoldEvent) string {
	field := func(name string, gv, wv any) string {
		return fmt.Sprintf("%s %v in the store, %v in the audit (token %q, holder %q)", name, gv, wv, w.TokenID, w.HolderID)
	}
	switch {
	case g.TokenID != w.TokenID:
		return field("token_id", fmt.Sprintf("%q", g.TokenID), fmt.Sprintf("%q", w.TokenID))
	case g.HolderID != w.HolderID:
		return field("holder_id", fmt.Sprintf("%q", g.HolderID), fmt.Sprintf("%q", w.HolderID))
	case g.Start != w.Start:
		return field("start", g.Start, w.Start)
	case g.HasEnd != w.HasEnd || g.End != w.End:
		end := func(e *core.HoldEvent) any {
			if !e.HasEnd {
				return "none"
			}
			return e.End
		}
		return field("end", end(g), end(w))
	case math.Float64bits(g.Weight) != math.Float64bits(w.Weight):
		return field("weight", g.Weight, w.Weight)
	case (g.Wei == nil) != (w.Wei == nil) || g.Wei != nil && *g.Wei != *w.Wei:
		return field("exact weight", weiText(g.Wei), weiText(w.Wei))
	}
	return ""
}

func weiText(w *core.Wei) string {
	if w == nil {
		return "none"
	}
	return fmt.Sprintf("0x%x", w[:])
}
