package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"unsafe"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// On-disk framing, shared by log segments and snapshots:
//
//	record  = length uint32 LE | crc32c(payload) uint32 LE | payload
//	payload = kind byte | body
//
// A zero length is never written (every payload has its kind byte), so a
// zero-filled tail reads as a torn record, not as an empty one.
//
// Log bodies (all integers varint / uvarint):
//
//	kindEvents: now | n | n × (len token | token | len holder | holder | start | flags [| end] [| weight float64 LE]
//	            [| exact weight, 32 bytes big-endian])
//	kindClose:  now | len token | token | len holder | holder | at
//	kindGC:     now
//
// flags bit 0: has end; bit 1: weight != 1 (else the weight is omitted);
// bit 2: an exact weight follows (exact mode).

const (
	kindEvents byte = 1
	kindClose  byte = 2
	kindGC     byte = 3

	kindSnapHeader byte = 10
	kindSnapHolder byte = 11
	kindSnapEnd    byte = 12

	headerSize = 8
	// maxRecord bounds one record so that a corrupted length cannot make
	// recovery allocate gigabytes.
	maxRecord = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a record that cannot be decoded.
var errCorrupt = errors.New("corrupt record")

// beginRecord reserves a header in b and returns b and the payload's offset.
func beginRecord(b []byte, kind byte) ([]byte, int) {
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, kind)
	return b, len(b) - 1
}

// endRecord fills in the header reserved by beginRecord.
func endRecord(b []byte, off int) []byte {
	p := b[off:]
	binary.LittleEndian.PutUint32(b[off-8:], uint32(len(p)))
	binary.LittleEndian.PutUint32(b[off-4:], crc32.Checksum(p, castagnoli))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendEvents encodes one kindEvents record of events (all of them, or only
// those with ok[i] when ok is not nil).
func appendEvents(b []byte, now int64, events []core.HoldEvent, ok []bool) []byte {
	b, off := beginRecord(b, kindEvents)
	b = binary.AppendVarint(b, now)
	n := len(events)
	if ok != nil {
		n = 0
		for _, v := range ok {
			if v {
				n++
			}
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for i := range events {
		if ok != nil && !ok[i] {
			continue
		}
		e := &events[i]
		b = appendString(b, e.TokenID)
		b = appendString(b, e.HolderID)
		b = binary.AppendVarint(b, e.Start)
		var flags byte
		if e.HasEnd {
			flags |= 1
		}
		if e.Weight != 1 {
			flags |= 2
		}
		if e.Wei != nil {
			flags |= 4
		}
		b = append(b, flags)
		if e.HasEnd {
			b = binary.AppendVarint(b, e.End)
		}
		if e.Weight != 1 {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.Weight))
		}
		if e.Wei != nil {
			b = append(b, e.Wei[:]...)
		}
	}
	return endRecord(b, off)
}

func appendClose(b []byte, now int64, token, holder string, at int64) []byte {
	b, off := beginRecord(b, kindClose)
	b = binary.AppendVarint(b, now)
	b = appendString(b, token)
	b = appendString(b, holder)
	b = binary.AppendVarint(b, at)
	return endRecord(b, off)
}

func appendGC(b []byte, now int64) []byte {
	b, off := beginRecord(b, kindGC)
	b = binary.AppendVarint(b, now)
	return endRecord(b, off)
}

// nextRecord splits the first record off b. It returns the payload, the
// number of bytes consumed, and errCorrupt for a torn or damaged record
// (too short, bad length or checksum mismatch).
func nextRecord(b []byte) (payload []byte, n int, err error) {
	if len(b) < headerSize {
		return nil, 0, fmt.Errorf("%w: %d-byte header fragment", errCorrupt, len(b))
	}
	size := binary.LittleEndian.Uint32(b)
	sum := binary.LittleEndian.Uint32(b[4:])
	if size == 0 || size > maxRecord {
		return nil, 0, fmt.Errorf("%w: length %d", errCorrupt, size)
	}
	if uint64(len(b)-headerSize) < uint64(size) {
		return nil, 0, fmt.Errorf("%w: length %d past the end (%d bytes left)", errCorrupt, size, len(b)-headerSize)
	}
	p := b[headerSize : headerSize+int(size)]
	if crc32.Checksum(p, castagnoli) != sum {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	return p, headerSize + int(size), nil
}

// reader decodes a payload body; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated or malformed body", errCorrupt)
	}
	r.b = nil
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) float() float64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

// str returns a string aliasing the payload (no copy): the aggregator clones
// whatever it keeps, and the payload outlives the call it is passed to.
func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := r.b[:n]
	r.b = r.b[n:]
	if n == 0 {
		return ""
	}
	return unsafe.String(&s[0], len(s))
}

// wei returns an exact weight aliasing the payload (32 bytes).
func (r *reader) wei() *core.Wei {
	if len(r.b) < 32 {
		r.fail()
		return nil
	}
	w := (*core.Wei)(r.b[:32])
	r.b = r.b[32:]
	return w
}

// int returns an exact sum (48 bytes big-endian).
func (r *reader) int() *core.Int {
	if len(r.b) < 48 {
		r.fail()
		return nil
	}
	var x core.Int
	x.SetBytes((*[48]byte)(r.b[:48]))
	r.b = r.b[48:]
	return &x
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.b))
	}
	return r.err
}

// decodeEvents decodes a kindEvents body into dst (reused). The id strings
// alias body.
func decodeEvents(body []byte, dst []core.HoldEvent) (now int64, events []core.HoldEvent, err error) {
	r := reader{b: body}
	now = r.varint()
	n := r.uvarint()
	// Every event takes at least 4 bytes: a bound on n before allocating.
	if r.err != nil || n > uint64(len(r.b))/4 {
		return 0, dst[:0], fmt.Errorf("%w: bad event count", errCorrupt)
	}
	dst = dst[:0]
	for i := uint64(0); i < n && r.err == nil; i++ {
		e := core.HoldEvent{Weight: 1}
		e.TokenID = r.str()
		e.HolderID = r.str()
		e.Start = r.varint()
		flags := r.byte()
		if flags&^7 != 0 {
			r.fail()
		}
		if flags&1 != 0 {
			e.HasEnd = true
			e.End = r.varint()
		}
		if flags&2 != 0 {
			e.Weight = r.float()
		}
		if flags&4 != 0 {
			e.Wei = r.wei()
		}
		dst = append(dst, e)
	}
	return now, dst, r.done()
}

func decodeClose(body []byte) (now int64, token, holder string, at int64, err error) {
	r := reader{b: body}
	now = r.varint()
	token = r.str()
	holder = r.str()
	at = r.varint()
	return now, token, holder, at, r.done()
}

func decodeGC(body []byte) (now int64, err error) {
	r := reader{b: body}
	now = r.varint()
	return now, r.done()
}

// Exported for the other stores (store/mongostore) and the audit log
// (audit), which keep the same records so that replay is the same
// everywhere. A record here is one logged write's payload: its kind byte,
// then its body (see the top of this file), without the log's framing.

// EventsRecord is the record Store logs for Record(now, events, o): with
// o.Partial only the events that pass Validate (what the aggregator
// applies), else all of them.
func EventsRecord(now int64, events []core.HoldEvent, o core.RecordOptions) []byte {
	var ok []bool
	if o.Partial {
		ok = make([]bool, len(events))
		for i := range events {
			ok[i] = events[i].Validate(i) == nil
		}
	}
	return appendEvents(nil, now, events, ok)[headerSize:]
}

// CloseRecord is the record of CloseHold(now, token, holder, at).
func CloseRecord(now int64, token, holder string, at int64) []byte {
	return appendClose(nil, now, token, holder, at)[headerSize:]
}

// GCRecord is the record of GC(now).
func GCRecord(now int64) []byte { return appendGC(nil, now)[headerSize:] }

// Replay applies one record to agg with its original now, as recovery does,
// and returns the number of events it held.
func Replay(agg *core.Aggregator, rec []byte) (int, error) {
	if len(rec) == 0 {
		return 0, fmt.Errorf("%w: empty record", errCorrupt)
	}
	evs, err := (&Store{agg: agg}).replay(rec, nil)
	return len(evs), err
}

// Decoded is a record in readable form (for reports).
type Decoded struct {
	Kind   string // "events", "close" or "gc"
	Now    int64
	Events []core.HoldEvent // kind events; the ids alias the record
	Token  string           // kind close: the pair and the time it closed at
	Holder string
	At     int64
}

// Decode reads a record.
func Decode(rec []byte) (Decoded, error) {
	if len(rec) == 0 {
		return Decoded{}, fmt.Errorf("%w: empty record", errCorrupt)
	}
	var d Decoded
	var err error
	switch rec[0] {
	case kindEvents:
		d.Kind = "events"
		d.Now, d.Events, err = decodeEvents(rec[1:], nil)
	case kindClose:
		d.Kind = "close"
		d.Now, d.Token, d.Holder, d.At, err = decodeClose(rec[1:])
	case kindGC:
		d.Kind = "gc"
		d.Now, err = decodeGC(rec[1:])
	default:
		err = fmt.Errorf("%w: unknown record kind %d", errCorrupt, rec[0])
	}
	return d, err
}

// Compatible says whether a state exported under was may be imported into
// an aggregator configured as now (an ErrConfigMismatch otherwise).
func Compatible(was, now core.StateConfig) error { return compatible(was, now) }
