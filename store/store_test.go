package store

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/holiman/uint256"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

func newAgg(t *testing.T) *core.Aggregator {
	t.Helper()
	a, err := core.New(core.Options{Shards: 8, TTL: 1000 * 1e9})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func open(t *testing.T, dir string, opts Options) (*Store, *core.Aggregator, *Recovery) {
	t.Helper()
	a := newAgg(t)
	s, rec, err := Open(dir, a, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // Windows cannot delete the dir of an open store
	return s, a, rec
}

// workload drives a store and a plain in-memory twin with the same writes.
func workload(t *testing.T, s *Store, twin *core.Aggregator, seed uint64, n int) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < n; i++ {
		now := int64(1000 + i)
		switch r.IntN(10) {
		case 0: // close
			tok, h := fmt.Sprintf("T%d", r.IntN(3)), fmt.Sprintf("h%d", r.IntN(20))
			_, err1 := s.CloseHold(now, tok, h, now)
			_, err2 := twin.CloseHold(now, tok, h, now)
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("close: store %v, twin %v", err1, err2)
			}
		case 1:
			_, err1 := s.GC(now + 500)
			_, err2 := twin.GC(now + 500)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
		default:
			evs := make([]core.HoldEvent, 1+r.IntN(5))
			for j := range evs {
				st := int64(r.IntN(1000))
				evs[j] = core.HoldEvent{TokenID: fmt.Sprintf("T%d", r.IntN(3)), HolderID: fmt.Sprintf("h%d", r.IntN(20)),
					Start: st, Weight: r.Float64() * 10}
				if r.IntN(2) == 0 {
					evs[j].End, evs[j].HasEnd = st+int64(r.IntN(500)), true
				}
				if r.IntN(30) == 0 {
					evs[j].Weight = -1 // invalid
				}
			}
			partial := r.IntN(2) == 0
			n1, err1 := core.RecordAndWait(s, now, evs, core.RecordOptions{Partial: partial})
			n2, err2 := twin.Record(now, evs, core.RecordOptions{Partial: partial})
			if n1 != n2 || (err1 == nil) != (err2 == nil) {
				t.Fatalf("record: store %d %v, twin %d %v", n1, err1, n2, err2)
			}
		}
	}
}

func sameState(t *testing.T, got, want *core.Aggregator) {
	t.Helper()
	for _, now := range []int64{0, 500, 5000, 1e9} {
		g, _ := got.Query(core.Query{Now: now})
		w, _ := want.Query(core.Query{Now: now})
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("now %d: recovered state differs\n got %+v\nwant %+v", now, g, w)
		}
		for _, tok := range []string{"T0", "T1"} {
			g, _ := got.Query(core.Query{N: 5, Now: now, Token: tok})
			w, _ := want.Query(core.Query{N: 5, Now: now, Token: tok})
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("top %s differs", tok)
			}
		}
	}
}

func TestReopenRebuildsExactly(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"log only", Options{SnapshotBytes: -1}},
		{"always", Options{Fsync: FsyncAlways, SnapshotBytes: -1}},
		{"none", Options{Fsync: FsyncNone, SnapshotBytes: -1}},
		{"tiny segments and snapshots", Options{SegmentBytes: 300, SnapshotBytes: 2000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			twin := newAgg(t)
			s, _, _ := open(t, dir, tc.opts)
			workload(t, s, twin, 1, 400)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2, a2, rec := open(t, dir, tc.opts)
			sameState(t, a2, twin)
			// And it keeps going: more writes, another restart.
			workload(t, s2, twin, 2, 200)
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			_, a3, rec3 := open(t, dir, tc.opts)
			sameState(t, a3, twin)
			t.Logf("recoveries: %+v / %+v", rec, rec3)
		})
	}
}

// crash simulates kill -9: the files stay as written, nothing is closed
// cleanly (the flusher is stopped without the final snapshot), the lock is
// released.
func crash(s *Store) {
	s.mu.Lock()
	s.closed = true
	s.opts.SnapshotBytes = -1
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	for _, c := range s.chunks {
		c.f.Close()
	}
	s.lock.Close()
}

func TestCrashKeepsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	twin := newAgg(t)
	s, _, _ := open(t, dir, Options{SegmentBytes: 1000, SnapshotBytes: 5000})
	workload(t, s, twin, 3, 300)
	crash(s)
	_, a2, _ := open(t, dir, Options{})
	sameState(t, a2, twin)
}

func lastSegment(t *testing.T, dir string) string {
	l, err := list(dir)
	if err != nil || len(l.segs) == 0 {
		t.Fatal(err, l)
	}
	return filepath.Join(dir, segName(l.segs[len(l.segs)-1]))
}

func TestTornAndCorruptTail(t *testing.T) {
	ev := func(h string) []core.HoldEvent {
		return []core.HoldEvent{{TokenID: "T", HolderID: h, Start: 1, End: 5, HasEnd: true, Weight: 1}}
	}
	for _, tc := range []struct {
		name   string
		damage func(path string)
	}{
		{"torn record", func(p string) {
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()-3)
		}},
		{"flipped byte", func(p string) {
			b, _ := os.ReadFile(p)
			b[len(b)-2] ^= 0xff
			os.WriteFile(p, b, 0o644)
		}},
		{"zero tail", func(p string) {
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.Write(make([]byte, 4096))
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _, _ := open(t, dir, Options{SnapshotBytes: -1})
			for _, h := range []string{"a", "b", "c"} {
				if _, err := core.RecordAndWait(s, 10, ev(h), core.RecordOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			crash(s)
			tc.damage(lastSegment(t, dir))
			s2, a2, rec := open(t, dir, Options{SnapshotBytes: -1})
			want := 3
			if tc.name != "zero tail" {
				want = 2
			}
			if a2.Len() != want || rec.TruncatedAt == "" {
				t.Fatalf("recovered %d holders (want %d), recovery %+v", a2.Len(), want, rec)
			}
			// The cut-off log is clean: a third start sees no damage.
			if _, err := core.RecordAndWait(s2, 20, ev("d"), core.RecordOptions{}); err != nil {
				t.Fatal(err)
			}
			s2.Close()
			_, a3, rec3 := open(t, dir, Options{SnapshotBytes: -1})
			if a3.Len() != want+1 || rec3.TruncatedAt != "" {
				t.Fatalf("third start: %d holders, %+v", a3.Len(), rec3)
			}
		})
	}
}

func TestCorruptSnapshotRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{})
	core.RecordAndWait(s, 1, []core.HoldEvent{{TokenID: "T", HolderID: "h", Start: 1, Weight: 1}}, core.RecordOptions{})
	s.Close()
	snaps, _ := filepath.Glob(filepath.Join(dir, "snap-*.snap"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots after close: %v", snaps)
	}
	b, _ := os.ReadFile(snaps[0])
	b[len(b)/2] ^= 1
	os.WriteFile(snaps[0], b, 0o644)
	if _, _, err := Open(dir, newAgg(t), Options{}); err == nil {
		t.Fatal("opened with a corrupt snapshot")
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{})
	defer s.Close()
	_, _, err := Open(dir, newAgg(t), Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

func TestConcurrentWritersAndClose(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{Fsync: FsyncAlways, SegmentBytes: 4096, SnapshotBytes: 20000})
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				_, err := core.RecordAndWait(s, 5, []core.HoldEvent{{TokenID: "T", HolderID: fmt.Sprintf("w%d-%d", w, i),
					Start: 1, End: 2, HasEnd: true, Weight: 1}}, core.RecordOptions{})
				if err == nil {
					mu.Lock()
					acked++
					mu.Unlock()
				} else if !errors.Is(err, ErrClosed) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, a, _ := open(t, dir, Options{})
	if a.Len() != acked {
		t.Fatalf("recovered %d holders, acknowledged %d", a.Len(), acked)
	}
}

func FuzzReplayRecord(f *testing.F) {
	f.Add(appendEvents(nil, 5, []core.HoldEvent{{TokenID: "T", HolderID: "h", Start: 1, End: 3, HasEnd: true, Weight: 2}}, nil))
	f.Add(appendClose(nil, 5, "T", "h", 9))
	f.Add(appendGC(nil, 5))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, _ := core.New(core.Options{Shards: 1, TTL: 1e9})
		s := &Store{agg: a}
		for len(data) > 0 {
			p, n, err := nextRecord(data)
			if err != nil {
				return
			}
			_, _ = s.replay(p, nil)
			data = data[n:]
		}
	})
}

// A version-1 snapshot, written by the daemon before windows and history
// existed (holdmetricsd at 80bbdb6 after 3 events and one close, then
// SIGTERM), still loads.
func TestSnapshotV1StillLoads(t *testing.T) {
	src, err := os.ReadFile("testdata/v1/snap-0000000000000002.snap")
	if err != nil {
		t.Fatal(err)
	}
	copyV1 := func() string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "snap-0000000000000002.snap"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	s, a, rec := open(t, copyV1(), Options{SnapshotBytes: -1})
	defer s.Close()
	if rec.Snapshot != "snap-0000000000000002.snap" || rec.Holders != 2 {
		t.Fatalf("recovery %+v", rec)
	}
	rows, _ := a.Query(core.Query{Now: 1000})
	want := []core.HolderStat{
		{HolderID: "alice", Score: 211, TotalSeconds: 115, Events: 2, Tokens: 2, UpdatedAt: 1795847255},
		{HolderID: "bob", Score: 30, TotalSeconds: 100, Events: 1, Tokens: 1, UpdatedAt: 1795847255},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("v1 snapshot rows\n got %+v\nwant %+v", rows, want)
	}
	// It holds no history: an aggregator that needs history refuses it.
	h, _ := core.New(core.Options{History: true})
	defer h.Close()
	if _, _, err := Open(copyV1(), h, Options{}); !errors.Is(err, ErrConfigMismatch) {
		t.Fatalf("history aggregator over a v1 snapshot: %v", err)
	}
}

// A version-2 snapshot (open holds without ends, history on), written by
// 0.1 (d4c8ef0: four events recorded at 1000 into a history aggregator,
// then Close), still loads, and the state answers as 0.1 did.
func TestSnapshotV2StillLoads(t *testing.T) {
	src, err := os.ReadFile("testdata/v2/snap-0000000000000002.snap")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "snap-0000000000000002.snap"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := core.New(core.Options{History: true})
	if err != nil {
		t.Fatal(err)
	}
	s, rec, err := Open(dir, a, Options{SnapshotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rec.Holders != 2 {
		t.Fatalf("recovery %+v", rec)
	}
	rows, _ := a.Query(core.Query{Now: 2000})
	want := []core.HolderStat{
		{HolderID: "bob", Score: 5955, TotalSeconds: 2010, Events: 2, OpenHolds: 1, Tokens: 1, UpdatedAt: 1000},
		{HolderID: "alice", Score: 2150, TotalSeconds: 2050, Events: 2, OpenHolds: 1, Tokens: 1, UpdatedAt: 1000},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("v2 snapshot rows\n got %+v\nwant %+v", rows, want)
	}
	if w, _ := a.Query(core.Query{Now: 2000, Window: &core.Window{Start: 0, End: 50}}); len(w) != 2 || w[0].Score != 105 || w[1].HolderID != "alice" || w[1].Score != 100 {
		t.Fatalf("window query over the v2 history: %+v", w)
	}
}

// A closed hold whose end was still ahead when it was recorded is live: a
// snapshot keeps it as such (version 3), and the reopened store scores it
// up to now as before, until a write at or after its end credits it.
func TestSnapshotKeepsLiveClosedHolds(t *testing.T) {
	dir := t.TempDir()
	s, a, _ := open(t, dir, Options{})
	evs := []core.HoldEvent{{TokenID: "T", HolderID: "h", Start: 0, End: 500, HasEnd: true, Weight: 2}}
	if _, err := core.RecordAndWait(s, 100, evs, core.RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	want, _ := a.Query(core.Query{Now: 300})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, b, rec := open(t, dir, Options{})
	defer s2.Close()
	if rec.Snapshot == "" || rec.Records != 0 {
		t.Fatalf("expected a snapshot-only recovery: %+v", rec)
	}
	got, _ := b.Query(core.Query{Now: 300})
	if !reflect.DeepEqual(got, want) || got[0].Score != 600 {
		t.Fatalf("reopened: %+v, before: %+v", got, want)
	}
}

func historyAgg(t *testing.T, w *core.Window, history bool) *core.Aggregator {
	t.Helper()
	a, err := core.New(core.Options{Shards: 8, TTL: 1000 * 1e9, History: history, Window: w})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func sameWindows(t *testing.T, got, want *core.Aggregator) {
	t.Helper()
	sameState(t, got, want)
	for _, now := range []int64{500, 5000, 1e9} {
		for _, w := range []core.Window{{Start: 0, End: 300}, {Start: 250, End: 900}, {Start: 600, End: 601}, core.All} {
			g, err1 := got.Query(core.Query{Now: now, Window: &w})
			x, err2 := want.Query(core.Query{Now: now, Window: &w})
			if err1 != nil || err2 != nil || !reflect.DeepEqual(g, x) {
				t.Fatalf("now %d window %v: recovered window rows differ (%v, %v)\n got %+v\nwant %+v", now, w, err1, err2, g, x)
			}
			g, _ = got.Query(core.Query{N: 3, Now: now, Token: "T1", Window: &w})
			x, _ = want.Query(core.Query{N: 3, Now: now, Token: "T1", Window: &w})
			if !reflect.DeepEqual(g, x) {
				t.Fatalf("now %d window %v: top T1 differs", now, w)
			}
		}
	}
}

// With history and a campaign window, snapshot + log rebuild window queries
// bit for bit, and a different window or a history-less snapshot is refused.
func TestHistorySurvivesSnapshotAndLog(t *testing.T) {
	camp := &core.Window{Start: 100, End: 800}
	dir := t.TempDir()
	twin := historyAgg(t, camp, true)
	opts := Options{SegmentBytes: 300, SnapshotBytes: 2000}
	s, err := openWith(dir, historyAgg(t, camp, true), opts)
	if err != nil {
		t.Fatal(err)
	}
	workload(t, s, twin, 3, 400)
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	workload(t, s, twin, 4, 100) // after the snapshot: replayed from the log
	crash(s)
	a2 := historyAgg(t, camp, true)
	s2, err := openWith(dir, a2, opts)
	if err != nil {
		t.Fatal(err)
	}
	sameWindows(t, a2, twin)
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := openWith(dir, historyAgg(t, &core.Window{Start: 100, End: 900}, true), opts); !errors.Is(err, ErrConfigMismatch) {
		t.Fatalf("another campaign window: %v", err)
	}
	// Dropping history is allowed; a snapshot then has none, and turning
	// history back on is refused.
	s3, err := openWith(dir, historyAgg(t, camp, false), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.RecordAndWait(s3, 2000, []core.HoldEvent{{TokenID: "T0", HolderID: "h0", Start: 1, End: 2, HasEnd: true, Weight: 1}}, core.RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s3.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := openWith(dir, historyAgg(t, camp, true), opts); !errors.Is(err, ErrConfigMismatch) {
		t.Fatalf("history over a history-less snapshot: %v", err)
	}
}

func openWith(dir string, a *core.Aggregator, opts Options) (*Store, error) {
	s, _, err := Open(dir, a, opts)
	return s, err
}

// Exact mode survives the log and the snapshot: the reopened store answers
// with the same integers, and a float-mode aggregator refuses the dir.
func TestExactReopen(t *testing.T) {
	for _, snapshots := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot %v", snapshots), func(t *testing.T) {
			dir := t.TempDir()
			opts := core.Options{Shards: 8, TTL: 1000 * 1e9, Exact: true, History: true}
			a, _ := core.New(opts)
			defer a.Close()
			so := Options{SnapshotBytes: -1}
			s, _, err := Open(dir, a, so)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(9, 9))
			for i := 0; i < 300; i++ {
				now := int64(1000 + i)
				evs := make([]core.HoldEvent, 1+r.IntN(4))
				for j := range evs {
					w := uint256.Int{r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64() >> 1}
					st := int64(r.IntN(1500))
					evs[j] = core.HoldEvent{TokenID: fmt.Sprintf("T%d", r.IntN(2)), HolderID: fmt.Sprintf("h%d", r.IntN(15)),
						Start: st, Weight: 1, Wei: core.WeiOf(&w)}
					if r.IntN(2) == 0 {
						evs[j].End, evs[j].HasEnd = st+int64(r.IntN(500)), true
					}
				}
				if _, err := core.RecordAndWait(s, now, evs, core.RecordOptions{}); err != nil {
					t.Fatal(err)
				}
				if i%25 == 0 {
					_, _ = s.CloseHold(now, "T1", fmt.Sprintf("h%d", r.IntN(15)), now+10)
					_, _ = s.GC(now)
				}
			}
			want, _ := a.Query(core.Query{Now: 2000})
			wantW, _ := a.Query(core.Query{Now: 2000, Window: &core.Window{Start: 500, End: 1200}})
			if snapshots {
				if err := s.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			b, _ := core.New(opts)
			defer b.Close()
			s2, rec, err := Open(dir, b, so)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			if snapshots != (rec.Snapshot != "") {
				t.Fatalf("recovery %+v", rec)
			}
			for k, pair := range [][2][]core.HolderStat{{want, nil}, {wantW, nil}} {
				q := core.Query{Now: 2000}
				if k == 1 {
					q.Window = &core.Window{Start: 500, End: 1200}
				}
				got, _ := b.Query(q)
				if len(got) != len(pair[0]) {
					t.Fatalf("%d rows, want %d", len(got), len(pair[0]))
				}
				for i := range got {
					if got[i].HolderID != pair[0][i].HolderID || got[i].Exact.Cmp(pair[0][i].Exact) != 0 {
						t.Fatalf("query %d row %d: %s %s, want %s %s", k, i, got[i].HolderID, got[i].Exact,
							pair[0][i].HolderID, pair[0][i].Exact)
					}
				}
			}
			s2.Close()
			f, _ := core.New(core.Options{History: true})
			defer f.Close()
			if _, _, err := Open(dir, f, so); !errors.Is(err, ErrConfigMismatch) && snapshots {
				t.Fatalf("float aggregator over an exact snapshot: %v", err)
			}
		})
	}
}

// dirState is every file of a dir with its bytes, to prove nothing changed.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// A damaged record anywhere but at the very end of the last segment is not a
// torn tail: Open refuses with the file and offset and changes nothing;
// Repair cuts there, keeping a copy, and the store then starts with every
// write before the damage.
func TestMidLogCorruptionRefusesAndRepairCuts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		segments bool // damage the first of several segments
	}{{"one segment", false}, {"earlier segment", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SnapshotBytes: -1}
			if tc.segments {
				opts.SegmentBytes = 300
			}
			s, _, _ := open(t, dir, opts)
			for i := 0; i < 40; i++ {
				evs := []core.HoldEvent{{TokenID: "T", HolderID: fmt.Sprintf("h%d", i), Start: 1, End: 5, HasEnd: true, Weight: 1}}
				if _, err := core.RecordAndWait(s, 10, evs, core.RecordOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			crash(s)
			l, _ := list(dir)
			if tc.segments != (len(l.segs) > 2) {
				t.Fatalf("segments: %v", l.segs)
			}
			first := filepath.Join(dir, segName(l.segs[0]))
			b, _ := os.ReadFile(first)
			off := len(walMagic)
			_, n, _ := nextRecord(b[off:]) // damage the second record's payload
			b[off+n+headerSize+2] ^= 0xff
			os.WriteFile(first, b, 0o644)
			before := dirState(t, dir)
			a := newAgg(t)
			_, _, err := Open(dir, a, opts)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%s at offset %d", first, off+n)) ||
				!strings.Contains(err.Error(), "holdmetricsd repair") {
				t.Fatalf("open over mid-log damage: %v", err)
			}
			if after := dirState(t, dir); !reflect.DeepEqual(after, before) {
				t.Fatal("a refused open changed the data dir")
			}
			rep, err := Repair(dir)
			if err != nil || rep.CutAt != fmt.Sprintf("%s:%d", segName(l.segs[0]), off+n) || len(rep.KeptAs) == 0 {
				t.Fatalf("repair: %+v %v", rep, err)
			}
			kept, _ := os.ReadFile(filepath.Join(dir, rep.KeptAs[0]))
			if string(kept) != string(b[off+n:]) {
				t.Fatal("the cut bytes were not kept as they were")
			}
			_, a2, rec := open(t, dir, opts)
			if a2.Len() != 1 || rec.TruncatedAt != "" {
				t.Fatalf("after repair: %d holders, %+v", a2.Len(), rec)
			}
		})
	}
}

// Files the store does not own are left alone (a stray wal-1.log is not a
// segment), and a torn tail in a segment that is not the last is corruption.
func TestDataDirScan(t *testing.T) {
	dir := t.TempDir()
	s, _, _ := open(t, dir, Options{SnapshotBytes: -1})
	core.RecordAndWait(s, 1, []core.HoldEvent{{TokenID: "T", HolderID: "h", Start: 1, Weight: 1}}, core.RecordOptions{})
	s.Close()
	for _, f := range []string{"wal-1.log", "notes.txt", "x.tmp"} {
		os.WriteFile(filepath.Join(dir, f), []byte("mine"), 0o644)
	}
	var logs strings.Builder
	a := newAgg(t)
	s2, _, err := Open(dir, a, Options{SnapshotBytes: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	for _, f := range []string{"wal-1.log", "notes.txt", "x.tmp"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || string(b) != "mine" {
			t.Fatalf("%s was touched: %v", f, err)
		}
		if !strings.Contains(logs.String(), f) {
			t.Fatalf("no warning names %s:\n%s", f, logs.String())
		}
	}
}
