package core

// holderTable is a shard's holders, keyed by the xxhash of the holder id
// that the record path has already computed to pick the shard. It is an
// open-addressing table with linear probing: a lookup compares 8-byte hashes
// in 16-byte slots and compares ids only on a hash match, with no second hash
// of the key (a Go map would hash the uint64 again). Two ids with the same
// 64-bit hash simply sit in one probe sequence. Deletion shifts the rest of
// the cluster back (no tombstones), so lookups never slow down with churn.
//
// The home slot is taken from the hash's top bits; the shard index uses its
// bottom bits. At most 3/4 of the slots are used, so a probe always ends.
type holderTable struct {
	slots []holderSlot // len is a power of two, or 0
	n     int
	shift uint // 64 - log2(len(slots))
}

type holderSlot struct {
	hash uint64
	h    *holder // nil: empty
}

func (t *holderTable) home(hash uint64) int { return int(hash >> t.shift) }

// get returns the holder with this id and hash, or nil.
func (t *holderTable) get(hash uint64, id string) *holder {
	if t.n == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := t.home(hash); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.h == nil {
			return nil
		}
		if s.hash == hash && s.h.id == id {
			return s.h
		}
	}
}

// put adds a holder that get does not find.
func (t *holderTable) put(hash uint64, h *holder) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	t.insert(hash, h)
	t.n++
}

func (t *holderTable) insert(hash uint64, h *holder) {
	mask := len(t.slots) - 1
	i := t.home(hash)
	for t.slots[i].h != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = holderSlot{hash, h}
}

func (t *holderTable) grow() {
	old := t.slots
	size := max(8, 2*len(old))
	t.slots = make([]holderSlot, size)
	t.shift = 64
	for s := size; s > 1; s >>= 1 {
		t.shift--
	}
	for _, s := range old {
		if s.h != nil {
			t.insert(s.hash, s.h)
		}
	}
}

// del removes h, stored under hash; it is a no-op if h is absent.
func (t *holderTable) del(hash uint64, h *holder) {
	if t.n == 0 {
		return
	}
	mask := len(t.slots) - 1
	i := t.home(hash)
	for t.slots[i].h != h {
		if t.slots[i].h == nil {
			return
		}
		i = (i + 1) & mask
	}
	t.n--
	// Backward-shift deletion: move later members of the cluster into the
	// hole unless that would put one before its home slot.
	for {
		t.slots[i] = holderSlot{}
		j := i
		for {
			j = (j + 1) & mask
			if t.slots[j].h == nil {
				return
			}
			k := t.home(t.slots[j].hash)
			// Slot j may fill hole i only if its home k is not in (i, j]
			// (cyclically).
			if i <= j {
				if i < k && k <= j {
					continue
				}
			} else if i < k || k <= j {
				continue
			}
			break
		}
		t.slots[i] = t.slots[j]
		i = j
	}
}

// all calls f for every holder once; f may del the holder it is given (and
// only that one). The walk starts after an empty slot: deletion only moves
// holders back within a cluster, never across an empty slot, so a holder
// shifted into the current slot has not been visited yet.
func (t *holderTable) all(f func(*holder)) {
	if t.n == 0 {
		return
	}
	mask := len(t.slots) - 1
	e := 0
	for t.slots[e].h != nil {
		e++
	}
	for k := 1; k <= len(t.slots); k++ {
		i := (e + k) & mask
		for {
			h := t.slots[i].h
			if h == nil {
				break
			}
			f(h)
			if t.slots[i].h == h {
				break // kept: on to the next slot
			}
			// deleted: slot i now holds an unvisited holder, or nothing
		}
	}
}
