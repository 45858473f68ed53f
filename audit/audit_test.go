package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/internal/dbtest"
	"github.com/poh-holdmetrics/poh-holdmetrics/internal/storetest"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
	"github.com/poh-holdmetrics/poh-holdmetrics/store/mongostore"
)

// Every test runs against a real immudb (built from its module source by
// scripts/build-dbserver.sh, started on loopback) and real stores: the
// embedded log in a temp dir, FerretDB embedded in the test binary.

var ctx = context.Background()

func aggOpts() core.Options { return core.Options{TTL: 1000 * 1e9} }

func dial(t *testing.T, im *dbtest.Immudb, state string) *Log {
	t.Helper()
	l, err := Dial(ctx, Config{URL: im.URL(), StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// openLog opens an audited embedded log in dir.
func openLog(t *testing.T, dir string, im *dbtest.Immudb, snapBytes int64) (*Writer, *core.Aggregator) {
	t.Helper()
	return openLogWith(t, dir, im, Options{SnapshotBytes: snapBytes})
}

func openLogWith(t *testing.T, dir string, im *dbtest.Immudb, o Options) (*Writer, *core.Aggregator) {
	t.Helper()
	a := storetest.NewAgg(t, aggOpts())
	st, _, err := store.Open(dir, a, store.Options{SnapshotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(ctx, Embedded(st), dial(t, im, filepath.Join(dir, "..", "audit-state")), o)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, a
}

func verify(t *testing.T, im *dbtest.Immudb, r Reader) (*Report, error) {
	t.Helper()
	l := dial(t, im, "")
	defer l.Close()
	return Verify(ctx, l, r)
}

func TestMirrorRestartAndVerify(t *testing.T) {
	im := dbtest.StartImmudb(t)
	dir := filepath.Join(t.TempDir(), "data")
	twin := storetest.NewAgg(t, aggOpts())
	w, _ := openLog(t, dir, im, -1)
	storetest.Workload(t, w, twin, 1, 200, 1000)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verify(t, im, LogDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if rep.From != 1 || rep.To != rep.Audited || rep.To < 150 {
		t.Fatalf("report %+v: want records 1..audited", rep)
	}
	// Restart: the audit continues where it was, and the state is whole.
	w2, a2 := openLog(t, dir, im, -1)
	storetest.SameState(t, a2, twin)
	storetest.Workload(t, w2, twin, 2, 50, 2000)
	w2.Close()
	rep2, err := verify(t, im, LogDir(dir))
	if err != nil || rep2.To <= rep.To {
		t.Fatalf("after a restart: %+v %v", rep2, err)
	}
}

// alterHolder rewrites the first events record of the log: its first
// event's holder id gets another first letter, and the record's checksum is
// fixed, as a tamperer would. It returns the record's position and the
// holder id before and after.
func alterHolder(t *testing.T, dir string) (pos, from, to string) {
	t.Helper()
	var payload []byte
	_, err := store.ReadLog(dir, func(p string, rec []byte) error {
		if pos == "" && rec[0] == 1 {
			pos, payload = p, append([]byte(nil), rec...)
		}
		return nil
	})
	if err != nil || pos == "" {
		t.Fatalf("no record to alter: %v", err)
	}
	d, err := store.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	from = strings.Clone(d.Events[0].HolderID) // the decoded id aliases payload
	to = "x" + from[1:]
	// Tokens are "T<n>", so the first length-prefixed holder id is event 0's.
	i := strings.Index(string(payload), string(rune(len(from)))+from) + 1
	copy(payload[i:], to)
	file, offText, _ := strings.Cut(pos, ":")
	off, _ := strconv.Atoi(offText)
	path := filepath.Join(dir, file)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copy(data[off+8:], payload)
	binary.LittleEndian.PutUint32(data[off+4:], crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return pos, from, to
}

func TestVerifyCatchesOneAlteredEvent(t *testing.T) {
	im := dbtest.StartImmudb(t)
	dir := filepath.Join(t.TempDir(), "data")
	w, _ := openLog(t, dir, im, -1)
	storetest.Workload(t, w, storetest.NewAgg(t, aggOpts()), 3, 100, 1000)
	w.Close()
	pos, from, to := alterHolder(t, dir)
	// The store itself still opens: the checksum is right, only the audit
	// can tell.
	a := storetest.NewAgg(t, aggOpts())
	if st, _, err := store.Open(dir, a, store.Options{SnapshotBytes: -1}); err != nil {
		t.Fatalf("the altered log no longer opens: %v", err)
	} else {
		st.Close()
	}
	rep, err := verify(t, im, LogDir(dir))
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("verify: %v, want ErrDiverged", err)
	}
	want := "(" + pos + "): event 0 of "
	if !strings.Contains(rep.Divergence, want) ||
		!strings.Contains(rep.Divergence, `holder_id "`+to+`" in the store, "`+from+`" in the audit`) {
		t.Fatalf("divergence %q does not name %s and the altered holder %s -> %s", rep.Divergence, pos, from, to)
	}
	t.Logf("divergence: %s", rep.Divergence)
}

func TestSnapshotsAreAudited(t *testing.T) {
	im := dbtest.StartImmudb(t)
	dir := filepath.Join(t.TempDir(), "data")
	twin := storetest.NewAgg(t, aggOpts())
	w, _ := openLog(t, dir, im, 2000)
	storetest.Workload(t, w, twin, 4, 300, 1000)
	w.Close()
	rep, err := verify(t, im, LogDir(dir))
	if err != nil || rep.Snapshot == "" {
		t.Fatalf("verify after snapshots: %+v %v", rep, err)
	}
	w2, a2 := openLog(t, dir, im, 2000)
	storetest.SameState(t, a2, twin)
	storetest.Workload(t, w2, twin, 5, 100, 2000)
	w2.Close()
	rep, err = verify(t, im, LogDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	// A snapshot altered in place (any byte) is caught by its digest.
	path := filepath.Join(dir, rep.Snapshot)
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 1
	os.WriteFile(path, data, 0o644)
	rep, err = verify(t, im, LogDir(dir))
	if !errors.Is(err, ErrDiverged) || !strings.Contains(rep.Divergence, "differs from the one audited") {
		t.Fatalf("an altered snapshot: %+v %v", rep, err)
	}
}

// Records written while no audit ran (or before a crash let them be
// mirrored) are mirrored at the next start; a store that lost audited
// records does not start.
func TestResyncMirrorsMissingAndRefusesLost(t *testing.T) {
	im := dbtest.StartImmudb(t)
	dir := filepath.Join(t.TempDir(), "data")
	twin := storetest.NewAgg(t, aggOpts())
	w, _ := openLog(t, dir, im, -1)
	storetest.Workload(t, w, twin, 6, 50, 1000)
	w.Close()
	a := storetest.NewAgg(t, aggOpts())
	st, _, err := store.Open(dir, a, store.Options{SnapshotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Workload(t, st, twin, 7, 50, 2000) // unaudited
	st.Close()
	if _, err := verify(t, im, LogDir(dir)); !errors.Is(err, ErrDiverged) {
		t.Fatalf("unaudited records: verify says %v", err)
	}
	w2, a2 := openLog(t, dir, im, -1)
	storetest.SameState(t, a2, twin)
	w2.Close()
	if rep, err := verify(t, im, LogDir(dir)); err != nil {
		t.Fatalf("after the resync: %+v %v", rep, err)
	}

	// Lose the last record of the log: the audit has a write the store lacks.
	cutLastRecord(t, dir)
	a3 := storetest.NewAgg(t, aggOpts())
	st3, _, err := store.Open(dir, a3, store.Options{SnapshotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewWriter(ctx, Embedded(st3), dial(t, im, ""), Options{SnapshotBytes: -1})
	st3.Close()
	if !errors.Is(err, ErrDiverged) || !strings.Contains(err.Error(), "audited writes are missing") {
		t.Fatalf("a store that lost audited writes: %v", err)
	}
}

// cutLastRecord removes the log's last record (and the empty segments
// after it), leaving a log that opens cleanly.
func cutLastRecord(t *testing.T, dir string) {
	t.Helper()
	var last string
	if _, err := store.ReadLog(dir, func(pos string, rec []byte) error {
		if rec[0] == 1 { // an events record: not one a resync applies again
			last = pos
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	file, offText, _ := strings.Cut(last, ":")
	off, _ := strconv.Atoi(offText)
	if err := os.Truncate(filepath.Join(dir, file), int64(off)); err != nil {
		t.Fatal(err)
	}
	later, _ := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	for _, p := range later {
		if filepath.Base(p) > file {
			os.Remove(p)
		}
	}
}

func TestMongoStoreAudited(t *testing.T) {
	im := dbtest.StartImmudb(t)
	uri := dbtest.FerretDB(t, "hm")
	twin := storetest.NewAgg(t, aggOpts())
	a := storetest.NewAgg(t, aggOpts())
	ms, _, err := mongostore.Open(ctx, uri, a, mongostore.Options{SnapshotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(ctx, Mongo(ms), dial(t, im, ""), Options{SnapshotBytes: 3000})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Workload(t, w, twin, 8, 200, 1000)
	if err := w.Close(); err != nil { // a final snapshot: every record is compacted into it
		t.Fatal(err)
	}
	// Again, with records left after the last snapshot.
	a2 := storetest.NewAgg(t, aggOpts())
	ms2, _, err := mongostore.Open(ctx, uri, a2, mongostore.Options{SnapshotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	w2, err := NewWriter(ctx, Mongo(ms2), dial(t, im, ""), Options{SnapshotBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	storetest.SameState(t, a2, twin)
	storetest.Workload(t, w2, twin, 9, 50, 2000)
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := mongostore.OpenReader(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep, err := verify(t, im, MongoReader(r))
	if err != nil || rep.Snapshot == "" {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// Alter one event of the last record document.
	client, err := mongodrv.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	recs := client.Database("hm").Collection("records")
	var doc struct {
		Seq int64  `bson:"_id"`
		Rec []byte `bson:"rec"`
	}
	if err := recs.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	d, err := store.Decode(doc.Rec)
	for err == nil && d.Kind != "events" {
		doc.Seq--
		if err = recs.FindOne(ctx, bson.D{{Key: "_id", Value: doc.Seq}}).Decode(&doc); err == nil {
			d, err = store.Decode(doc.Rec)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	d.Events[0].Start++
	altered := store.EventsRecord(d.Now, d.Events, core.RecordOptions{})
	if _, err := recs.UpdateOne(ctx, bson.D{{Key: "_id", Value: doc.Seq}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "rec", Value: altered}}}}); err != nil {
		t.Fatal(err)
	}
	rep, err = verify(t, im, MongoReader(r))
	if !errors.Is(err, ErrDiverged) || !strings.Contains(rep.Divergence, "records._id "+strconv.FormatInt(doc.Seq, 10)) ||
		!strings.Contains(rep.Divergence, "event 0 of") || !strings.Contains(rep.Divergence, "start ") {
		t.Fatalf("an altered document: %+v %v", rep, err)
	}
}

// While immudb is down, a write that the store has cannot be acknowledged
// and new writes are refused; once it is back the audit resyncs by itself
// (the stored write included) and writes resume.
func TestAuditOutageRefusesThenResumes(t *testing.T) {
	im := dbtest.StartImmudb(t)
	dir := filepath.Join(t.TempDir(), "data")
	twin := storetest.NewAgg(t, aggOpts())
	w, _ := openLogWith(t, dir, im, Options{SnapshotBytes: -1, AckTimeout: time.Second})
	storetest.Workload(t, w, twin, 10, 30, 1000)
	im.Stop()
	ev := []core.HoldEvent{{TokenID: "T0", HolderID: "during", Start: 5, Weight: 1}}
	if _, err := core.RecordAndWait(w, 3000, ev, core.RecordOptions{}); !errors.Is(err, ErrUnaudited) {
		t.Fatalf("a write while immudb is down: %v, want ErrUnaudited", err)
	}
	twin.Record(3000, ev, core.RecordOptions{}) // the store has it: audited at the resync
	if _, _, err := w.Record(3001, ev, core.RecordOptions{}); err == nil || w.Health() == nil {
		t.Fatalf("writes are taken while the audit is down (err %v, health %v)", err, w.Health())
	}
	im.Restart(t)
	deadline := time.Now().Add(60 * time.Second)
	for w.Health() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the audit did not resync: %v", w.Health())
		}
		time.Sleep(50 * time.Millisecond)
	}
	storetest.Workload(t, w, twin, 11, 30, 4000)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := verify(t, im, LogDir(dir)); err != nil {
		t.Fatalf("after the outage: %+v %v", rep, err)
	}
	_, a2 := openLog(t, dir, im, -1)
	storetest.SameState(t, a2, twin)
}

// The C library (capi) links neither the MongoDB driver nor the immudb
// client: both are the daemon's (see README, Durability).
func TestCAPILinksNeitherClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/poh-holdmetrics/poh-holdmetrics/capi").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./capi: %v: %s", err, out) // go test runs it: go is here
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"go.mongodb.org/", "github.com/codenotary/", "/store/mongostore", "/audit"} {
			if strings.Contains(dep, banned) {
				t.Errorf("capi depends on %s", dep)
			}
		}
	}
}
