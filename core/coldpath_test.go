package core

import (
	"fmt"
	"slices"
	"testing"
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// Holder ids live in the shard's id chunks (internTable.cloneID). Dropping
// most holders copies the live ids out of the mostly dead chunks, and
// nothing that holds an id sees it change: the kept holders, their lookups,
// rows read before the copy, holders created after it.
func TestHolderIDChunksCompactAfterDrops(t *testing.T) {
	a := newAgg(t, Options{TTL: 10, Shards: 1})
	sh := &a.shards[0]
	record := func(now int64, prefix string, n int) {
		evs := make([]HoldEvent, n)
		for i := range evs {
			evs[i] = HoldEvent{TokenID: "T", HolderID: fmt.Sprintf("%s-%d", prefix, i), Start: 0, End: 5, HasEnd: true,
				Weight: 1}
		}
		if _, err := a.Record(now, evs, RecordOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	idBytes := func() (n int) {
		sh.live(func(h *holder) { n += len(h.id) })
		return n
	}
	check := func(when string) {
		t.Helper()
		tab := &sh.tokens
		if tab.idLive != idBytes() {
			t.Fatalf("%s: %d live id bytes counted, %d in use", when, tab.idLive, idBytes())
		}
		if tab.idDead >= idChunk && tab.idDead > tab.idLive {
			t.Fatalf("%s: %d dead id bytes against %d live were not compacted", when, tab.idDead, tab.idLive)
		}
	}
	record(100, "old", 5_000)
	record(150, "kept", 100)
	before, err := snapshot(a, 150)
	if err != nil || len(before) != 5_100 {
		t.Fatal(err, len(before))
	}
	check("after recording")
	idData := func(id string) *byte { return unsafe.StringData(sh.get(xxhash.Sum64String(id), id).id) }
	kept := idData("kept-7")
	if n, _ := a.GC(150); n != 5_000 {
		t.Fatalf("GC dropped %d, want 5000", n)
	}
	check("after GC")
	if idData("kept-7") == kept {
		t.Fatal("the kept ids were not copied out of the dead chunks")
	}
	record(160, "new", 300)
	check("after new holders")

	// Rows read before the drops keep their ids, byte for byte.
	var want []string
	for _, p := range []string{"old", "kept"} {
		for i := range map[string]int{"old": 5_000, "kept": 100}[p] {
			want = append(want, fmt.Sprintf("%s-%d", p, i))
		}
	}
	got := make([]string, len(before))
	for i, st := range before {
		got[i] = st.HolderID
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatal("rows read before the GC changed their ids")
	}
	// Every holder left is found by its id and has its own row.
	rows, _ := snapshot(a, 160)
	if len(rows) != 400 {
		t.Fatalf("%d rows, want 400", len(rows))
	}
	for _, p := range []string{"kept-7", "kept-99", "new-0", "new-299"} {
		r, err := a.Query(Query{Now: 160, Holder: p})
		if err != nil || len(r) != 1 || r[0].HolderID != p || r[0].Events != 1 || r[0].Score != 5 {
			t.Fatalf("%s: %+v, %v", p, r, err)
		}
	}
	if n, _ := a.GC(1_000); n != 400 || sh.tokens.idLive != 0 || sh.tokens.ids != nil {
		t.Fatalf("an emptied shard keeps ids: dropped %d, %d live bytes", n, sh.tokens.idLive)
	}
}
