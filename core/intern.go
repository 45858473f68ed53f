package core

import (
	"unsafe"

	"github.com/cespare/xxhash/v2"
)

// internTable is a shard's interned token ids: one copy of each token id per
// shard, shared by every (holder, token) pair of the shard. A token is looked
// up only when a pair is created, so in a cold ingest (every event a new
// holder on a new token) this is on every event's path; it was a third of
// such a Record with a Go map (its growth rehashes every string, and each
// copy was an allocation of its own).
//
// It is an open-addressing table with linear probing keyed by the xxhash of
// the id, which is stored: growing moves slots without hashing again, and a
// lookup compares ids only on a hash match. The copies are packed into
// append-only chunks (no allocation per token), and a slot names its copy by
// chunk and offset, so neither the slots nor the chunks hold a pointer for
// the garbage collector to scan or to put a write barrier on. Nothing is
// ever deleted: like the map it replaces, the table lives until the shard
// has no holder left (GC) or is reset, and then is replaced whole.
//
// It also keeps the shard's holder ids (cloneID): those are not interned
// (each is stored once anyway) but copied into append-only chunks of their
// own, so that a new holder costs no allocation of its own for its id (in a
// cold ingest that allocation and the garbage collector's work on it were a
// fifth of a Record). A dropped holder's bytes stay in their chunk, dead,
// until dead bytes reach a chunk and outnumber the live ones; then the shard
// copies its live ids into fresh chunks (shard.drop), so the id chunks hold
// at most twice the live ids' bytes plus a chunk. A chunk is never written
// below its length, so an id handed to a caller (a query row, an exported
// state) stays valid, and keeps its chunk alive, however long it is kept.
type internTable struct {
	slots  []internSlot // len is a power of two, or 0; at most 3/4 used
	n      int
	shift  uint     // 64 - log2(len(slots))
	chunks [][]byte // every copy, in append-only chunks; the last one has room

	ids            []byte // the current holder id chunk (len used)
	idLive, idDead int    // bytes of the ids in use and of dropped ones
}

// internSlot is one interned id: chunks[chunk][off : off+n]; n 0 = empty.
type internSlot struct {
	hash  uint64
	chunk uint32
	off   uint16
	n     uint16
}

// internChunk is the largest chunk size (a uint16 offset); a shard with few
// tokens keeps small chunks (they start at 64 bytes and double).
const internChunk = 8 << 10

func (t *internTable) at(s *internSlot) string {
	return unsafe.String(&t.chunks[s.chunk][s.off], int(s.n))
}

// get returns the interned copy of id (non-empty, at most MaxIDBytes),
// interning it first if needed.
func (t *internTable) get(id string) string {
	hash := xxhash.Sum64String(id)
	if t.n > 0 {
		mask := len(t.slots) - 1
		for i := int(hash >> t.shift); ; i = (i + 1) & mask {
			s := &t.slots[i]
			if s.n == 0 {
				break
			}
			if s.hash == hash && int(s.n) == len(id) {
				if c := t.at(s); c == id {
					return c
				}
			}
		}
	}
	s := t.copy(hash, id)
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	t.insert(s)
	t.n++
	return t.at(&s)
}

// copy appends id to the last chunk (to a new one when it does not fit) and
// returns its slot.
func (t *internTable) copy(hash uint64, id string) internSlot {
	last := len(t.chunks) - 1
	if last < 0 || len(t.chunks[last])+len(id) > cap(t.chunks[last]) {
		size := internChunk
		if last >= 0 {
			size = min(max(64, 2*cap(t.chunks[last])), internChunk)
		} else {
			size = 64
		}
		t.chunks = append(t.chunks, make([]byte, 0, max(size, len(id))))
		last++
	}
	c := &t.chunks[last]
	off := len(*c)
	*c = append(*c, id...)
	return internSlot{hash: hash, chunk: uint32(last), off: uint16(off), n: uint16(len(id))}
}

func (t *internTable) insert(s internSlot) {
	mask := len(t.slots) - 1
	i := int(s.hash >> t.shift)
	for t.slots[i].n != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = s
}

func (t *internTable) grow() {
	old := t.slots
	size := max(8, 2*len(old))
	t.slots = make([]internSlot, size)
	t.shift = 64
	for s := size; s > 1; s >>= 1 {
		t.shift--
	}
	for _, s := range old {
		if s.n != 0 {
			t.insert(s)
		}
	}
}

// idChunk is the largest holder id chunk; a shard with few holders keeps
// small ones (256 bytes, doubling).
const idChunk = 16 << 10

// cloneID returns a copy of the holder id id (at most MaxIDBytes) that the
// table owns.
func (t *internTable) cloneID(id string) string {
	c := t.ids
	if len(c)+len(id) > cap(c) {
		c = make([]byte, 0, max(min(max(256, 2*cap(c)), idChunk), len(id)))
	}
	off := len(c)
	c = append(c, id...)
	t.ids = c
	t.idLive += len(id)
	return unsafe.String(&c[off], len(id))
}

// releaseID records that a copy of n bytes is no longer used, and reports
// whether the live ids should now be copied into fresh chunks.
func (t *internTable) releaseID(n int) bool {
	t.idLive -= n
	t.idDead += n
	return t.idDead >= idChunk && t.idDead > t.idLive
}
