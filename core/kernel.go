package core

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/holiman/uint256"
)

// The batch group-by kernel: one row per holder (or per (holder, token)
// pair) of a columnar batch, straight from the columns, without a live
// aggregator. Its rows are exactly what an Aggregator would answer after
// recording the batch at o.Now (with o.Window as its campaign window) and
// being queried at the same now: the same bits, because each pair sums its
// credited holds with the aggregator's Neumaier recurrence in input order
// and each row adds the pairs' sums and their live holds in the order the
// aggregator reads them (see model.go and finishPartition).
//
// How (a radix-partitioned hash aggregate):
//  1. scatter: each worker takes a contiguous range of rows, validates them
//     (the batch is all-or-nothing), hashes each holder id once (xxhash of
//     its canonical form: an address as its 20 bytes, which also folds its
//     letter case), interns token ids, and appends a compact record of the
//     row (hash, score term, seconds, kind, token, id) to the partition the
//     hash's top bits choose: a list of blocks per worker and partition, so
//     each partition's records stay in input order and are read
//     sequentially, never by random access into the input;
//  2. aggregate: workers take whole partitions (they share nothing) and
//     build each one's table, small enough to stay in the L2 cache;
//  3. rank: the rows are sorted (score descending, then holder_id, then
//     token_id ascending), or only the top N are kept in a heap.
//
// Workers are goroutines of this call only: every one has returned when
// ScoreByHolder does (nothing outlives the call, nothing is left running).

// GroupOptions says what ScoreByHolder computes.
type GroupOptions struct {
	// Now, Window, TWAB and Exact as for ScoreColumns: each row's score is
	// the windowed score (or TWAB, or exact score) of its rows. (Acc does
	// not apply: a group's sums start at zero.)
	ScoreOptions
	// ByToken makes one row per (holder, token) pair instead of per holder.
	ByToken bool
	// N > 0 keeps only the first N rows of the ranking (a bounded heap); 0
	// keeps every row. Negative is an error.
	N int
	// Threads is how many goroutines may work (each on its own rows, then
	// its own partitions); 0 means GOMAXPROCS, 1 the caller's goroutine
	// only.
	Threads int
}

// Grouped is ScoreByHolder's result: columns of equal length, one entry per
// row, in ranking order. Every buffer is owned by the result.
type Grouped struct {
	Holders IDColumn // canonical holder ids (address.go)
	Tokens  IDColumn // canonical token ids, with ByToken; empty otherwise
	Score   []float64
	// Exact is each row's exact score (a TWAB's floor) in exact mode; nil
	// in float mode. Score is then its nearest float64.
	Exact        []Int
	TotalSeconds []int64 // unweighted, clipped like the score
	Events       []int64
	OpenHolds    []int64
	TokenCount   []int64 // distinct tokens of the holder (1 with ByToken)
	// Now is the time the rows were computed at.
	Now int64
	// UpdatedAt is each row's updated_at (an aggregator's rows, from
	// QueryColumns); nil in a kernel result, whose every row has Now.
	UpdatedAt []int64
}

// Len is the number of rows.
func (g *Grouped) Len() int { return len(g.Score) }

// Row is row i as an Aggregator query row (its ids alias the result).
func (g *Grouped) Row(i int) HolderStat {
	st := HolderStat{HolderID: g.Holders.at(i), Score: g.Score[i], TotalSeconds: g.TotalSeconds[i],
		Events: g.Events[i], OpenHolds: g.OpenHolds[i], Tokens: int(g.TokenCount[i]), UpdatedAt: g.Now}
	if g.UpdatedAt != nil {
		st.UpdatedAt = g.UpdatedAt[i]
	}
	if g.Exact != nil {
		st.Exact = &g.Exact[i]
	}
	return st
}

// TokenID is row i's token (ByToken), or "".
func (g *Grouped) TokenID(i int) string {
	if g.Tokens.Offsets == nil {
		return ""
	}
	return g.Tokens.at(i)
}

// maxKernelRows bounds one call: rows are numbered with uint32.
const maxKernelRows = math.MaxUint32

// Sizing knobs that tests set to run many partitions and workers on small
// batches (never changed otherwise).
var (
	kernelRowsPerWorker = 4096 // rows a worker needs to be worth starting
	kernelPartitionBits = -1   // >= 0: this many partition bits
)

// ScoreByHolder groups a batch by holder (or by (holder, token) with
// o.ByToken) and scores each group at o.Now: the rows an Aggregator would
// give for the batch (see the top of this file), in ranking order. The
// holder_id column is required (token_id too with ByToken; without a token
// column every row is of one token). Now, the window and every row are
// validated first, all-or-nothing: the error is the lowest-index bad row's
// *ValidationError, as Record reports it.
func ScoreByHolder(c *Columns, o GroupOptions) (*Grouped, error) {
	win, d, err := o.window()
	if err != nil {
		return nil, err
	}
	if o.N < 0 {
		return nil, &ValidationError{-1, "n", itoa(o.N), ReasonOutOfRange, "must be >= 0"}
	}
	if err := c.check(false); err != nil {
		return nil, err
	}
	if c.Holder.Offsets == nil {
		return nil, &ValidationError{-1, "holder_id", "absent", ReasonEmpty, "column is required"}
	}
	if o.ByToken && c.Token.Offsets == nil {
		return nil, &ValidationError{-1, "token_id", "absent", ReasonEmpty, "column is required to group by token"}
	}
	if !o.Exact && c.Wei != nil {
		return nil, errExactWeight(-1)
	}
	n := c.Len()
	if uint64(n) > maxKernelRows {
		return nil, &ValidationError{-1, "rows", itoa(n), ReasonOutOfRange,
			"more than 2^32-1 rows in one call"}
	}
	k := &kernel{c: c, o: o, win: win, twab: d, now: o.Now}
	k.workers = o.Threads
	if k.workers <= 0 {
		k.workers = runtime.GOMAXPROCS(0)
	}
	// Below a few thousand rows a goroutine costs more than it saves.
	k.workers = max(1, min(k.workers, n/kernelRowsPerWorker))
	return k.run()
}

// kernel is one ScoreByHolder call's state.
type kernel struct {
	c       *Columns
	o       GroupOptions
	win     Window
	twab    int64 // the TWAB denominator (0: not a TWAB)
	now     int64
	workers int

	pbits   uint // partitions = 1 << pbits, by the hash's top bits
	blockSz int
	scans   []*scan

	tokens  []string // global token ids (canonical), by global index
	tokRank []uint32 // global index -> rank of its id in ascending order

	outs []*kOut
}

// run does the three steps.
func (k *kernel) run() (*Grouped, error) {
	k.pickPartitions()
	k.scans = make([]*scan, k.workers)
	k.parallel(func(w int) {
		lo, hi := k.chunk(w)
		k.scans[w] = k.scatterRows(lo, hi)
	})
	bad := -1
	for _, s := range k.scans {
		if s.bad >= 0 && (bad < 0 || s.bad < bad) {
			bad = s.bad
		}
	}
	if bad >= 0 {
		if err := k.c.validateRow(bad, k.o.Exact); err != nil {
			return nil, err
		}
		// not reached: the checks agree (a fuzz target holds them together)
		return nil, &ValidationError{bad, "event", "?", ReasonOutOfRange, "rejected"}
	}
	k.mergeTokens()
	k.aggregate()
	return k.rank(), nil
}

// parallel runs f(0..workers-1), f(0) on the caller's goroutine.
func (k *kernel) parallel(f func(w int)) {
	if k.workers == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < k.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(w)
		}()
	}
	f(0)
	wg.Wait()
}

// chunk is worker w's contiguous range of rows.
func (k *kernel) chunk(w int) (lo, hi int) {
	n := k.c.Len()
	return n * w / k.workers, n * (w + 1) / k.workers
}

// rowsPerPartition is the target number of rows in one partition: with up
// to that many distinct holders its table (16 B a slot, at most half full)
// and its holders (kHolder, ~100 B) stay inside a 512 KiB L2; with fewer
// holders it is smaller still. The partition count is capped because each
// partition is an open write stream during the scatter (cache lines and
// TLB entries).
const (
	rowsPerPartition = 4096
	maxPartitionBits = 9
	maxRecord        = recHeader + MaxIDBytes + 3
)

func (k *kernel) pickPartitions() {
	n := k.c.Len()
	want := n / rowsPerPartition
	if n >= 1<<16 {
		want = max(want, 4*k.workers) // enough partitions to share out
	}
	b := uint(0)
	for b < maxPartitionBits && 1<<b < want {
		b++
	}
	if kernelPartitionBits >= 0 {
		b = uint(kernelPartitionBits)
	}
	k.pbits = b
	// Blocks of about a quarter of a worker's expected share of a
	// partition (48-byte records), between 4 KiB and 64 KiB.
	per := n / k.workers >> b * 48 / 4
	k.blockSz = min(max(per, 4<<10), 64<<10)
}

// part is the partition of a hash.
func (k *kernel) part(x uint64) int {
	if k.pbits == 0 {
		return 0
	}
	return int(x >> (64 - k.pbits))
}

// --- 1. scatter -----------------------------------------------------------------------

// scan is one worker's output of the scatter: its rows' records, by
// partition, and the token ids it saw.
type scan struct {
	bad    int        // the lowest invalid row, or -1
	parts  [][][]byte // partition -> blocks of records, in row order
	tokIDs [][]byte   // local token index -> its bytes (aliasing the column)
	tokTab []uint32   // open addressing: local index + 1, 0 empty
	tokH   []uint64   // the hashes of tokTab's slots
	remap  []uint32   // local token index -> global
	_      [64]byte   // keep workers' hot fields off one cache line
}

// A record, little-endian, 4-byte aligned:
//
//	0  hash   uint64  xxhash of the id's canonical form
//	8  term   float64 the row's score term at now (exact mode: the row index, as uint64)
//	16 packed uint64  seconds (bits 0-37), kind (38-39), id length - 1 (40-47), address (48)
//	24 token  uint32  worker-local token index
//	28 id     the canonical id: an address's 20 bytes, or the id as given
const (
	recHeader   = 28
	packKind    = 38
	packLen     = 40
	packAddress = 1 << 48
	secsMask    = 1<<38 - 1
)

// Row kinds: how the aggregator holds a row after recording it at now.
const (
	kindCredited   = 0 // an end at or before now: in the pair's closed sum
	kindLiveClosed = 1 // an end after now: live, scored when read
	kindOpen       = 2 // no end: live and open
)

// scatterRows validates rows [lo, hi) and writes their records.
func (k *kernel) scatterRows(lo, hi int) *scan {
	np := 1 << k.pbits
	s := &scan{bad: -1, parts: make([][][]byte, np)}
	cur := make([][]byte, np) // the block being written of each partition
	c := k.c
	hol, tok := c.Holder, c.Token
	hasTok := tok.Offsets != nil
	now, win, exact := k.now, k.win, k.o.Exact
	var last []byte
	lastTok := uint32(0)
	var addr [20]byte
	le := binary.LittleEndian
	for i := lo; i < hi; i++ {
		t := uint32(0)
		if hasTok {
			b := tok.Data[tok.Offsets[i]:tok.Offsets[i+1]]
			if !validIDBytes(b) {
				s.bad = i
				break
			}
			if last == nil || !bytes.Equal(b, last) {
				lastTok = s.intern(b)
				last = b
			}
			t = lastTok
		}
		id := hol.Data[hol.Offsets[i]:hol.Offsets[i+1]]
		isAddr := len(id) == 42 && decodeAddress(id, &addr)
		if !isAddr && !validIDBytes(id) || !k.validNumbers(i) {
			s.bad = i
			break
		}
		key := id
		if isAddr {
			key = addr[:]
		}
		x := xxhash.Sum64(key)
		start := c.Start[i]
		end, hasEnd := int64(0), false
		if c.End != nil && (c.HasEnd == nil || c.HasEnd[i] != 0) {
			end, hasEnd = c.End[i], true
		}
		secs := win.held(start, end, hasEnd, now)
		kind := uint64(kindOpen)
		if hasEnd {
			kind = kindLiveClosed
			if end <= now {
				kind = kindCredited
			}
		}
		var term uint64
		if exact {
			term = uint64(i)
		} else {
			w := 1.0
			if c.Weight != nil {
				w = c.Weight[i]
			}
			term = math.Float64bits(float64(secs) * w)
		}
		packed := uint64(secs) | kind<<packKind | uint64(len(id)-1)<<packLen
		if isAddr {
			packed |= packAddress
		}
		p := k.part(x)
		blk := cur[p]
		size := recHeader + (len(key)+3)&^3
		if cap(blk)-len(blk) < size {
			if blk != nil {
				s.parts[p] = append(s.parts[p], blk)
			}
			blk = make([]byte, 0, k.blockSz)
		}
		off := len(blk)
		blk = blk[:off+size]
		r := blk[off : off+size]
		le.PutUint64(r[0:], x)
		le.PutUint64(r[8:], term)
		le.PutUint64(r[16:], packed)
		le.PutUint32(r[24:], t)
		copy(r[recHeader:], key)
		cur[p] = blk
	}
	for p, blk := range cur {
		if len(blk) > 0 {
			s.parts[p] = append(s.parts[p], blk)
		}
	}
	return s
}

// validNumbers is validateSpan and the weight check of row i as one verdict
// (it must agree with validateRow, which explains a failure).
func (k *kernel) validNumbers(i int) bool {
	c := k.c
	s := c.Start[i]
	if uint64(s) > uint64(MaxTime) {
		return false
	}
	if c.End != nil && (c.HasEnd == nil || c.HasEnd[i] != 0) {
		if e := c.End[i]; e < s || e > MaxTime {
			return false
		}
	}
	switch {
	case c.Wei != nil:
		return true // any 32 bytes are a weight below 2^256
	case c.Weight == nil:
		return true
	case k.o.Exact:
		f := c.Weight[i]
		return f >= 0 && f <= MaxExactFloatWeight && f == math.Trunc(f)
	}
	w := c.Weight[i]
	return w >= 0 && w <= MaxWeight // false for NaN
}

// validIDBytes is ValidateID's verdict.
func validIDBytes(b []byte) bool {
	return uint(len(b)-1) < MaxIDBytes && (asciiBits(unsafeString(b))&nonASCII == 0 || utf8.Valid(b))
}

// intern returns the worker-local index of token b.
func (s *scan) intern(b []byte) uint32 {
	if (len(s.tokIDs)+1)*2 > len(s.tokTab) {
		s.growTokens()
	}
	x := xxhash.Sum64(b)
	mask := len(s.tokTab) - 1
	for i := int(x) & mask; ; i = (i + 1) & mask {
		v := s.tokTab[i]
		if v == 0 {
			s.tokIDs = append(s.tokIDs, b)
			s.tokTab[i], s.tokH[i] = uint32(len(s.tokIDs)), x
			return uint32(len(s.tokIDs) - 1)
		}
		if s.tokH[i] == x && bytes.Equal(s.tokIDs[v-1], b) {
			return v - 1
		}
	}
}

func (s *scan) growTokens() {
	size := max(16, 2*len(s.tokTab))
	s.tokTab, s.tokH = make([]uint32, size), make([]uint64, size)
	mask := size - 1
	for j, b := range s.tokIDs {
		x := xxhash.Sum64(b)
		i := int(x) & mask
		for s.tokTab[i] != 0 {
			i = (i + 1) & mask
		}
		s.tokTab[i], s.tokH[i] = uint32(j+1), x
	}
}

// mergeTokens numbers the canonical token ids of every worker globally and
// ranks them (the by-token order breaks ties by token id).
func (k *kernel) mergeTokens() {
	index := map[string]uint32{}
	if k.c.Token.Offsets == nil {
		k.tokens = []string{""}
	}
	for _, s := range k.scans {
		s.remap = make([]uint32, max(len(s.tokIDs), 1))
		for j, b := range s.tokIDs {
			id := CanonicalID(string(b))
			g, ok := index[id]
			if !ok {
				g = uint32(len(k.tokens))
				index[id] = g
				k.tokens = append(k.tokens, id)
			}
			s.remap[j] = g
		}
		s.tokTab, s.tokH, s.tokIDs = nil, nil, nil
	}
	if len(k.tokens) == 0 {
		k.tokens = []string{""} // no rows
	}
	order := make([]uint32, len(k.tokens))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return cmp.Compare(k.tokens[a], k.tokens[b]) })
	k.tokRank = make([]uint32, len(k.tokens))
	for r, g := range order {
		k.tokRank[g] = uint32(r)
	}
}

// decodeAddress reports whether id is "0x" and 40 hex digits of either case
// (IsAddress) and, if so, writes its 20 bytes: the canonical form, whatever
// the letters' case. Eight digits at a time (SWAR), as this runs per row.
func decodeAddress(id []byte, out *[20]byte) bool {
	if id[0] != '0' || id[1] != 'x' {
		return false
	}
	const ones = 0x0101010101010101
	le := binary.LittleEndian
	h := id[2:42]
	for j := 0; j < 5; j++ {
		x := le.Uint64(h[8*j:])
		// every byte a digit, A-F or a-f
		if inRange(x, '0'-1, '9'+1)|inRange(x, 'A'-1, 'F'+1)|inRange(x, 'a'-1, 'f'+1) != ones*0x80 {
			return false
		}
		// nibble values: (c & 15) + 9 for a letter (bit 6 set), c & 15 for a digit
		v := x&(ones*15) + (x>>6)&ones*9
		// byte i = v_i << 4 | v_{i+1} at even i, then the even bytes packed
		m := (v<<4 | v>>8) & 0x00ff00ff00ff00ff
		m = (m | m>>8) & 0x0000ffff0000ffff
		m = (m | m>>16) & 0xffffffff
		le.PutUint32(out[4*j:], uint32(m))
	}
	return true
}

// inRange has the top bit of each byte of x that lies strictly between m
// and n set, every other bit clear (m ≤ 127, n ≤ 128; "Bit Twiddling
// Hacks", hasbetween, which is exact per byte).
func inRange(x, m, n uint64) uint64 {
	const ones = 0x0101010101010101
	lo := x & (ones * 127)
	return (ones*(127+n) - lo) & ^x & (lo + ones*(127-m)) & (ones * 128)
}

// appendAddress appends the canonical (lowercase) text of an address.
func appendAddress(dst []byte, b []byte) []byte {
	const digits = "0123456789abcdef"
	dst = append(dst, '0', 'x')
	for _, c := range b {
		dst = append(dst, digits[c>>4], digits[c&15])
	}
	return dst
}

// --- 2. aggregate ---------------------------------------------------------------------

// kPair is one (holder, token) pair of a partition.
type kPair struct {
	closed   neumaier // credited holds (float mode)
	secs     int64
	events   int64
	open     int64
	tok      uint32
	next     int32 // the holder's next pair, -1 for none
	liveHead int32 // the pair's live terms, in input order (-1: none)
	liveTail int32
	ex       int32 // exact mode: index of the pair's sum in the partition's exacts
}

// kHolder is one holder of a partition: its first pair inline (most holders
// hold one token), the others in a list.
type kHolder struct {
	hash   uint64
	key    int64 // the canonical id in the worker's key arena (see recKey)
	npairs int32
	last   int32 // the last pair (-1: first); pairs after first are in pairs
	first  kPair
}

// A key names an id in a worker's arena: offset << 10 | keyAddress |
// length (of the stored bytes: 20 for an address).
const keyAddress = 1 << 9

func recKey(off int64, address bool, n int) int64 {
	k := off<<10 | int64(n)
	if address {
		k |= keyAddress
	}
	return k
}

type kSlot struct {
	hash uint64
	h    uint32 // holder index + 1; 0 empty
}

// kOut is one worker's output rows (in no order until rank).
type kOut struct {
	keys  []byte // holder ids (stored form)
	key   []int64
	score []float64
	exact []Int
	secs  []int64
	evs   []int64
	open  []int64
	ntok  []int64
	tok   []uint32 // ByToken
	top   []kRef   // N > 0: a heap of the best N rows so far

	// scratch reused across partitions
	slots   []kSlot
	holders []kHolder
	pairs   []kPair
	liveT   []float64
	liveN   []int32
	exacts  []Int
	_       [64]byte
}

func (k *kernel) aggregate() {
	np := 1 << k.pbits
	k.outs = make([]*kOut, k.workers)
	var next atomic.Int64
	k.parallel(func(w int) {
		out := &kOut{}
		k.outs[w] = out
		for {
			p := int(next.Add(1) - 1)
			if p >= np {
				break
			}
			k.groupPartition(out, w, p)
		}
		out.slots, out.holders, out.pairs, out.liveT, out.liveN, out.exacts = nil, nil, nil, nil, nil, nil
	})
}

// groupPartition aggregates partition p's records (in input order: worker
// 0's, then worker 1's, ...) and appends its rows to out.
func (k *kernel) groupPartition(out *kOut, w, p int) {
	rows := 0 // about: records are 32 bytes and more
	for _, s := range k.scans {
		for _, blk := range s.parts[p] {
			rows += len(blk) / 32
		}
	}
	if rows == 0 {
		return
	}
	exact := k.o.Exact
	// A table at most half full: sized for every row being a new holder
	// when that is small, else grown as holders come.
	size := 16
	for size < 2*min(rows, rowsPerPartition) {
		size <<= 1
	}
	out.slots = resize(out.slots, size)
	clear(out.slots)
	out.holders, out.pairs = out.holders[:0], out.pairs[:0]
	out.liveT, out.liveN, out.exacts = out.liveT[:0], out.liveN[:0], out.exacts[:0]
	shift := k.pbits
	tshift := uint(64 - bits.TrailingZeros(uint(size)))
	mask := size - 1
	le := binary.LittleEndian
	for _, s := range k.scans {
		remap := s.remap
		for bi, blk := range s.parts[p] {
			for len(blk) > 0 {
				x := le.Uint64(blk)
				term := le.Uint64(blk[8:])
				packed := le.Uint64(blk[16:])
				tok := remap[le.Uint32(blk[24:])]
				address := packed&packAddress != 0
				n := int(packed>>packLen&0xff) + 1
				if address {
					n = 20
				}
				id := blk[recHeader : recHeader+n]
				blk = blk[recHeader+(n+3)&^3:]
				secs := int64(packed & secsMask)
				kind := packed >> packKind & 3

				i := int((x << shift) >> tshift)
				var h *kHolder
				for {
					sl := &out.slots[i]
					if sl.h == 0 {
						if (len(out.holders)+1)*2 > size {
							size <<= 1
							tshift--
							mask = size - 1
							out.growSlots(size, shift, tshift)
							i = int((x << shift) >> tshift)
							continue
						}
						off := int64(len(out.keys))
						out.keys = append(out.keys, id...)
						out.holders = append(out.holders, kHolder{hash: x, key: recKey(off, address, n),
							npairs: 1, last: -1, first: kPair{tok: tok, next: -1, liveHead: -1, liveTail: -1, ex: -1}})
						h = &out.holders[len(out.holders)-1]
						*sl = kSlot{x, uint32(len(out.holders))}
						if exact {
							h.first.ex = int32(len(out.exacts))
							out.exacts = append(out.exacts, Int{})
						}
						break
					}
					if sl.hash == x {
						cand := &out.holders[sl.h-1]
						if (cand.key&keyAddress != 0) == address && bytes.Equal(out.keyBytes(cand.key), id) {
							h = cand
							break
						}
					}
					i = (i + 1) & mask
				}
				pr := &h.first
				if pr.tok != tok {
					pr = out.pairOf(h, tok, exact)
				}
				pr.events++
				pr.secs += secs
				if kind == kindOpen {
					pr.open++
				}
				if exact {
					wx := k.exactWeight(int(term))
					out.exacts[pr.ex].addMul(&wx, uint64(secs))
					continue
				}
				t := math.Float64frombits(term)
				if kind == kindCredited {
					pr.closed.addNonNeg(t)
					continue
				}
				out.liveT = append(out.liveT, t)
				out.liveN = append(out.liveN, -1)
				li := int32(len(out.liveT) - 1)
				if pr.liveTail < 0 {
					pr.liveHead = li
				} else {
					out.liveN[pr.liveTail] = li
				}
				pr.liveTail = li
			}
			s.parts[p][bi] = nil // read: let it go
		}
	}
	k.finishPartition(out, w)
}

// keyBytes is the stored form of a key.
func (out *kOut) keyBytes(key int64) []byte {
	off, n := key>>10, key&0x1ff
	return out.keys[off : off+n]
}

// exactWeight is row i's exact weight (validated).
func (k *kernel) exactWeight(i int) uint256.Int {
	var w uint256.Int
	c := k.c
	switch {
	case c.Wei != nil:
		w.SetBytes32(c.Wei[32*i : 32*i+32])
	case c.Weight != nil:
		w.SetUint64(uint64(c.Weight[i]))
	default:
		w.SetOne()
	}
	return w
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func (out *kOut) growSlots(size int, shift, tshift uint) {
	out.slots = resize(out.slots, size)
	clear(out.slots)
	mask := size - 1
	for j := range out.holders {
		x := out.holders[j].hash
		i := int((x << shift) >> tshift)
		for out.slots[i].h != 0 {
			i = (i + 1) & mask
		}
		out.slots[i] = kSlot{x, uint32(j + 1)}
	}
}

// pairOf is h's pair of token tok, added (last) if h has none.
func (out *kOut) pairOf(h *kHolder, tok uint32, exact bool) *kPair {
	for j := h.first.next; j >= 0; j = out.pairs[j].next {
		if out.pairs[j].tok == tok {
			return &out.pairs[j]
		}
	}
	np := kPair{tok: tok, next: -1, liveHead: -1, liveTail: -1, ex: -1}
	if exact {
		np.ex = int32(len(out.exacts))
		out.exacts = append(out.exacts, Int{})
	}
	out.pairs = append(out.pairs, np)
	j := int32(len(out.pairs) - 1)
	if h.last < 0 {
		h.first.next = j
	} else {
		out.pairs[h.last].next = j
	}
	h.last = j
	h.npairs++
	return &out.pairs[j]
}

// finishPartition turns the partition's holders into output rows. A holder's
// score adds, pair by pair in first-seen order, the pair's closed sum, its
// compensation and its live terms: Aggregator.holder.stat's order.
func (k *kernel) finishPartition(out *kOut, w int) {
	for hi := range out.holders {
		h := &out.holders[hi]
		if k.o.ByToken {
			for p := &h.first; ; p = &out.pairs[p.next] {
				var acc neumaier
				var x Int
				k.addPair(out, p, &acc, &x)
				k.put(out, w, h, p.secs, p.events, p.open, 1, acc.value(), &x, p.tok)
				if p.next < 0 {
					break
				}
			}
			continue
		}
		var acc neumaier
		var x Int
		var secs, evs, open int64
		for p := &h.first; ; p = &out.pairs[p.next] {
			k.addPair(out, p, &acc, &x)
			secs, evs, open = secs+p.secs, evs+p.events, open+p.open
			if p.next < 0 {
				break
			}
		}
		k.put(out, w, h, secs, evs, open, int64(h.npairs), acc.value(), &x, 0)
	}
}

// addPair adds a pair's score to acc (float mode) or x (exact mode) as
// tokenState.stat does: sum, compensation, then the live terms.
func (k *kernel) addPair(out *kOut, p *kPair, acc *neumaier, x *Int) {
	if k.o.Exact {
		x.add(&out.exacts[p.ex])
		return
	}
	acc.add(p.closed.sum)
	acc.add(p.closed.comp)
	for li := p.liveHead; li >= 0; li = out.liveN[li] {
		acc.add(out.liveT[li])
	}
}

// put adds one output row (score is the float sum, x the exact one); with
// N > 0 only while it is among the best N so far.
func (k *kernel) put(out *kOut, w int, h *kHolder, secs, evs, open, ntok int64, score float64, x *Int, tok uint32) {
	if k.o.Exact {
		if k.twab > 0 {
			*x = x.DivFloor(uint64(k.twab))
		}
		out.exact = append(out.exact, *x)
		score = x.Float()
	} else if k.twab > 0 {
		score /= float64(k.twab)
	}
	out.key = append(out.key, h.key)
	out.score = append(out.score, score)
	out.secs = append(out.secs, secs)
	out.evs = append(out.evs, evs)
	out.open = append(out.open, open)
	out.ntok = append(out.ntok, ntok)
	if k.o.ByToken {
		out.tok = append(out.tok, tok)
	}
	if k.o.N > 0 {
		r := kRef{score, uint32(w), uint32(len(out.score) - 1)}
		if !k.offer(out, r) {
			out.pop()
		}
	}
}

// pop drops the last output row (one the heap did not take).
func (out *kOut) pop() {
	n := len(out.score) - 1
	out.key, out.score, out.secs, out.evs = out.key[:n], out.score[:n], out.secs[:n], out.evs[:n]
	out.open, out.ntok = out.open[:n], out.ntok[:n]
	if out.exact != nil {
		out.exact = out.exact[:n]
	}
	if out.tok != nil {
		out.tok = out.tok[:n]
	}
}

// offer puts r in out's heap of the best N rows if it belongs there; false
// when it does not (it then is the last row and nothing refers to it). A
// row the heap drops stays in out's columns, unreferenced.
func (k *kernel) offer(out *kOut, r kRef) bool {
	h := out.top
	if len(h) < k.o.N {
		out.top = append(h, r)
		h = out.top
		for i := len(h) - 1; i > 0; { // sift up: the root is the worst kept row
			parent := (i - 1) / 2
			if k.cmpRef(h[i], h[parent]) <= 0 {
				break
			}
			h[i], h[parent] = h[parent], h[i]
			i = parent
		}
		return true
	}
	if k.cmpRef(r, h[0]) >= 0 {
		return false
	}
	h[0] = r
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		j := l
		if l+1 < len(h) && k.cmpRef(h[l+1], h[l]) > 0 {
			j = l + 1
		}
		if k.cmpRef(h[j], h[i]) <= 0 {
			break
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
	return true
}

// --- 3. rank ------------------------------------------------------------------------

// kRef names one output row: worker w's row i.
type kRef struct {
	score float64
	w     uint32
	i     uint32
}

// cmpID orders two rows' holder ids as their canonical texts compare.
func (k *kernel) cmpID(a, b kRef) int {
	oa, ob := k.outs[a.w], k.outs[b.w]
	ka, kb := oa.key[a.i], ob.key[b.i]
	ba, bb := oa.keyBytes(ka), ob.keyBytes(kb)
	aa, ab := ka&keyAddress != 0, kb&keyAddress != 0
	if aa == ab {
		return bytes.Compare(ba, bb) // two addresses: bytes order as their hex does
	}
	var ta, tb [42]byte
	if aa {
		ba = appendAddress(ta[:0], ba)
	}
	if ab {
		bb = appendAddress(tb[:0], bb)
	}
	return bytes.Compare(ba, bb)
}

// cmpRef is the ranking order: score descending (exact: the exact score),
// then holder_id ascending, then token_id ascending.
func (k *kernel) cmpRef(a, b kRef) int {
	if k.o.Exact {
		if c := k.outs[b.w].exact[b.i].Cmp(&k.outs[a.w].exact[a.i]); c != 0 {
			return c
		}
	} else if c := cmp.Compare(b.score, a.score); c != 0 {
		return c
	}
	if c := k.cmpID(a, b); c != 0 {
		return c
	}
	if k.o.ByToken {
		return cmp.Compare(k.tokRank[k.outs[a.w].tok[a.i]], k.tokRank[k.outs[b.w].tok[b.i]])
	}
	return 0
}

func (k *kernel) rank() *Grouped {
	runs := make([][]kRef, k.workers)
	k.parallel(func(w int) {
		o := k.outs[w]
		r := o.top
		if k.o.N == 0 {
			r = make([]kRef, len(o.score))
			for i := range r {
				r[i] = kRef{o.score[i], uint32(w), uint32(i)}
			}
		}
		slices.SortFunc(r, k.cmpRef)
		runs[w] = r
	})
	order := k.merge(runs)
	if k.o.N > 0 && len(order) > k.o.N {
		order = order[:k.o.N]
	}
	return k.build(order)
}

// merge merges sorted runs into one, pairwise, runs of a round in parallel.
func (k *kernel) merge(runs [][]kRef) []kRef {
	for len(runs) > 1 {
		next := make([][]kRef, (len(runs)+1)/2)
		var wg sync.WaitGroup
		for j := range next {
			if 2*j+1 == len(runs) {
				next[j] = runs[2*j]
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				next[j] = k.merge2(runs[2*j], runs[2*j+1])
			}()
		}
		wg.Wait()
		runs = next
	}
	return runs[0]
}

func (k *kernel) merge2(a, b []kRef) []kRef {
	out := make([]kRef, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if k.cmpRef(b[0], a[0]) < 0 {
			out = append(out, b[0])
			b = b[1:]
		} else {
			out = append(out, a[0])
			a = a[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}

// build copies the ranked rows into the result's own columns.
func (k *kernel) build(order []kRef) *Grouped {
	n := len(order)
	g := &Grouped{Now: k.now, Score: make([]float64, n), TotalSeconds: make([]int64, n),
		Events: make([]int64, n), OpenHolds: make([]int64, n), TokenCount: make([]int64, n)}
	if k.o.Exact {
		g.Exact = make([]Int, n)
	}
	idBytes := 0
	for _, r := range order {
		key := k.outs[r.w].key[r.i]
		if key&keyAddress != 0 {
			idBytes += 42
		} else {
			idBytes += int(key & 0x1ff)
		}
	}
	g.Holders = IDColumn{Data: make([]byte, 0, idBytes), Offsets: make([]int64, n+1)}
	if k.o.ByToken {
		tokBytes := 0
		for _, r := range order {
			tokBytes += len(k.tokens[k.outs[r.w].tok[r.i]])
		}
		g.Tokens = IDColumn{Data: make([]byte, 0, tokBytes), Offsets: make([]int64, n+1)}
	}
	for j, r := range order {
		o := k.outs[r.w]
		i := r.i
		key := o.key[i]
		if key&keyAddress != 0 {
			g.Holders.Data = appendAddress(g.Holders.Data, o.keyBytes(key))
		} else {
			g.Holders.Data = append(g.Holders.Data, o.keyBytes(key)...)
		}
		g.Holders.Offsets[j+1] = int64(len(g.Holders.Data))
		g.Score[j] = o.score[i]
		if g.Exact != nil {
			g.Exact[j] = o.exact[i]
		}
		g.TotalSeconds[j], g.Events[j], g.OpenHolds[j], g.TokenCount[j] = o.secs[i], o.evs[i], o.open[i], o.ntok[i]
		if k.o.ByToken {
			g.Tokens.Data = append(g.Tokens.Data, k.tokens[o.tok[i]]...)
			g.Tokens.Offsets[j+1] = int64(len(g.Tokens.Data))
		}
	}
	return g
}
