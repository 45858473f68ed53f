package core

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/holiman/uint256"
)

// Transfers → hold intervals. Chain data is not hold events but balance
// changes: ERC-20 Transfer logs (from, to, value) or balance tables (holder,
// new balance or signed delta). Per (token, holder) the running balance
// changes at each row, in (block, log index) order (input order for equal
// keys); each balance lasts from its change to the next as one hold whose
// weight is the balance, and the last one is an open hold. Balances are
// exact integers (uint256): a balance that would go negative, or past
// 2^256 − 1, is an error naming the row, never a clamp.
//
// The input is columnar (what the C API, Arrow and cryo's Parquet give):
// ids are read in place, addresses are keyed by their 20 bytes, and the
// state and output hold no pointers, so ten million rows cost the garbage
// collector nothing.

// ZeroAddress mints (as a sender) and burns (as a receiver); it is never a
// holder unless TransferOptions.ZeroHolder asks for it.
const ZeroAddress = "0x0000000000000000000000000000000000000000"

// TransferKind says what a row's Value means.
type TransferKind int

// The row kinds.
const (
	// KindTransfer: Value moves from From to To (ERC-20 Transfer).
	KindTransfer TransferKind = iota
	// KindBalance: Holder's balance becomes Value.
	KindBalance
	// KindDelta: Holder's balance changes by Value (subtracted where
	// Negative[i] != 0).
	KindDelta
)

// TransferColumns is a batch of balance changes in columns. Token and Time
// are required; From and To for KindTransfer, Holder for the others. Block
// and LogIndex order the rows (nil: input order); Removed flags reorged rows
// (nil: none). Value is 32 bytes big-endian per row (cryo's u256 layout).
type TransferColumns struct {
	Token, From, To, Holder IDColumn
	Time, Block, LogIndex   []int64
	Value                   []byte
	Negative, Removed       []uint8
}

// Len is the number of rows.
func (c *TransferColumns) Len() int { return len(c.Time) }

// Balance is an opening balance of a (token, holder) pair.
type Balance struct {
	Token, Holder string
	Value         uint256.Int
}

// TransferOptions configures Intervals. The zero value: ERC-20 transfers,
// no opening balances, the zero address not a holder.
type TransferOptions struct {
	Kind TransferKind
	// Opening balances hold from OpeningTime on; every row must then be at
	// or after OpeningTime.
	Opening     []Balance
	OpeningTime int64
	// ZeroHolder keeps the zero address as a holder.
	ZeroHolder bool
	// Row names row i in errors (file:line); nil: "row i".
	Row func(i int) string
}

// Holds is what Intervals makes: the (token, holder) pairs, ids in canonical
// form, and the holds, each naming its pair.
type Holds struct {
	Pairs []Pair
	Rows  []HoldRow
}

// Pair is a (token, holder).
type Pair struct{ Token, Holder string }

// HoldRow is one interval: the pair held Weight from Start to End (open when
// !HasEnd).
type HoldRow struct {
	Pair       int32
	HasEnd     bool
	Start, End int64
	Weight     uint256.Int
}

// TransferError names the row a transfer failed at.
type TransferError struct {
	Index  int    // the row, -1 for an opening balance
	Row    string // "row 7", or what TransferOptions.Row said
	Field  string
	Reason string
	Detail string
}

func (e *TransferError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Row, e.Field, e.Detail)
}

// holderKey is an id as a map key: an address by its 20 bytes (so every
// spelling of it is one key), any other id by its bytes.
type holderKey struct {
	addr [20]byte
	isA  bool
}

// tokenHolders is one token's pairs.
type tokenHolders struct {
	addr  map[[20]byte]int32
	other map[string]int32
}

// running is a pair's current balance since its last change.
type running struct {
	balance uint256.Int
	since   int64
}

type intervals struct {
	o       *TransferOptions
	cols    *TransferColumns
	tokens  map[string]*tokenHolders // by canonical token id
	curTok  string
	cur     *tokenHolders
	state   []running
	pairs   []Pair
	out     []HoldRow
	scratch []byte
}

// Intervals turns balance changes into holds: per pair in order of its
// first change, each pair's closed holds in time order, then the open ones.
// Rows are taken in (Block, LogIndex) order, stable (rows of one position
// keep input order); in order already (cryo's and ethereum-etl's), nothing
// is sorted.
func Intervals(c *TransferColumns, o TransferOptions) (*Holds, error) {
	if err := c.check(o.Kind); err != nil {
		return nil, err
	}
	x := &intervals{o: &o, cols: c, tokens: map[string]*tokenHolders{},
		out: make([]HoldRow, 0, c.Len()+c.Len()/2)}
	for i, b := range o.Opening {
		tok, err := transferID(b.Token)
		if err != nil {
			return nil, x.fail(-1, "token_id", string(ReasonOutOfRange), "opening balance %d: %v", i, err)
		}
		h, err := transferID(b.Holder)
		if err != nil {
			return nil, x.fail(-1, "holder_id", string(ReasonOutOfRange), "opening balance %d: %v", i, err)
		}
		p := x.pair(tok, h)
		if !x.state[p].balance.IsZero() {
			return nil, x.fail(-1, "holder_id", "duplicate", "opening balance %d: %s/%s appears twice", i, quoteID(tok), quoteID(h))
		}
		x.state[p].balance = b.Value
	}
	var v, nb uint256.Int
	for _, i := range c.order() {
		if c.Removed != nil && c.Removed[i] != 0 {
			continue
		}
		t := c.Time[i]
		if err := ValidateTime(i, "time", t); err != nil {
			return nil, x.fail(i, "time", string(err.Reason), "%s", err.Detail)
		}
		if len(o.Opening) > 0 && t < o.OpeningTime {
			return nil, x.fail(i, "time", string(ReasonOutOfRange), "%d is before the opening balances' time %d", t, o.OpeningTime)
		}
		tok, err := transferID(c.Token.at(i))
		if err != nil {
			return nil, x.fail(i, "token_id", string(ReasonOutOfRange), "%v", err)
		}
		v.SetBytes32(c.Value[32*i : 32*i+32])
		switch o.Kind {
		case KindTransfer:
			from, to := c.From.at(i), c.To.at(i)
			fk, err := keyOf(from)
			if err != nil {
				return nil, x.fail(i, "from_address", string(ReasonOutOfRange), "%v", err)
			}
			tk, err := keyOf(to)
			if err != nil {
				return nil, x.fail(i, "to_address", string(ReasonOutOfRange), "%v", err)
			}
			if fk == tk && (fk.isA || from == to) || v.IsZero() {
				continue // a self-transfer or a zero transfer changes nothing
			}
			if !fk.zero() || o.ZeroHolder {
				p := x.pairOf(tok, fk, from)
				r := &x.state[p]
				if r.balance.Lt(&v) {
					return nil, x.fail(i, "value", string(ReasonNegative),
						"holder %s of token %s has %s and sends %s: its balance would go negative",
						quoteID(x.pairs[p].Holder), quoteID(tok), r.balance.Dec(), v.Dec())
				}
				nb.Sub(&r.balance, &v)
				x.change(p, t, &nb)
			}
			if !tk.zero() || o.ZeroHolder {
				p := x.pairOf(tok, tk, to)
				r := &x.state[p]
				if _, over := nb.AddOverflow(&r.balance, &v); over {
					return nil, x.fail(i, "value", string(ReasonOutOfRange),
						"holder %s of token %s has %s and receives %s: past 2^256-1", quoteID(x.pairs[p].Holder),
						quoteID(tok), r.balance.Dec(), v.Dec())
				}
				x.change(p, t, &nb)
			}
		case KindBalance, KindDelta:
			h := c.Holder.at(i)
			hk, err := keyOf(h)
			if err != nil {
				return nil, x.fail(i, "holder_id", string(ReasonOutOfRange), "%v", err)
			}
			p := x.pairOf(tok, hk, h)
			r := &x.state[p]
			switch {
			case o.Kind == KindBalance:
				nb = v
			case c.Negative != nil && c.Negative[i] != 0:
				if r.balance.Lt(&v) {
					return nil, x.fail(i, "delta", string(ReasonNegative),
						"holder %s of token %s has %s and the delta is -%s: its balance would go negative",
						quoteID(x.pairs[p].Holder), quoteID(tok), r.balance.Dec(), v.Dec())
				}
				nb.Sub(&r.balance, &v)
			default:
				if _, over := nb.AddOverflow(&r.balance, &v); over {
					return nil, x.fail(i, "delta", string(ReasonOutOfRange), "holder %s of token %s: balance past 2^256-1",
						quoteID(x.pairs[p].Holder), quoteID(tok))
				}
			}
			x.change(p, t, &nb)
		default:
			return nil, fmt.Errorf("transfers: unknown kind %d", o.Kind)
		}
	}
	for p := range x.state {
		if r := &x.state[p]; !r.balance.IsZero() {
			x.out = append(x.out, HoldRow{Pair: int32(p), Start: r.since, Weight: r.balance})
		}
	}
	return &Holds{Pairs: x.pairs, Rows: groupByPair(x.out, len(x.pairs))}, nil
}

// groupByPair is rows grouped by pair, each pair's rows in their order (a
// counting sort: O(rows + pairs)).
func groupByPair(rows []HoldRow, pairs int) []HoldRow {
	start := make([]int, pairs+1)
	for i := range rows {
		start[rows[i].Pair+1]++
	}
	for p := 1; p <= pairs; p++ {
		start[p] += start[p-1]
	}
	out := make([]HoldRow, len(rows))
	for i := range rows {
		p := rows[i].Pair
		out[start[p]] = rows[i]
		start[p]++
	}
	return out
}

func (x *intervals) fail(i int, field, reason, detail string, args ...any) error {
	row := fmt.Sprintf("row %d", i)
	switch {
	case i < 0:
		row = "opening balances"
	case x.o.Row != nil:
		row = x.o.Row(i)
	}
	return &TransferError{Index: i, Row: row, Field: field, Reason: reason, Detail: fmt.Sprintf(detail, args...)}
}

// change sets pair p's balance at t, closing the hold of the old one.
func (x *intervals) change(p int32, t int64, nb *uint256.Int) {
	r := &x.state[p]
	if !r.balance.IsZero() && t > r.since {
		x.out = append(x.out, HoldRow{Pair: p, HasEnd: true, Start: r.since, End: t, Weight: r.balance})
	}
	r.balance, r.since = *nb, t
}

// holders is token's pairs (a run of rows of one token looks it up once).
func (x *intervals) holders(token string) *tokenHolders {
	if x.cur == nil || token != x.curTok {
		if x.cur = x.tokens[token]; x.cur == nil {
			x.cur = &tokenHolders{addr: map[[20]byte]int32{}}
			x.tokens[strings.Clone(token)] = x.cur
		}
		x.curTok = token
	}
	return x.cur
}

// pairOf is the pair of (token, holder), created on first sight; id is the
// holder as written (used only to create the pair).
func (x *intervals) pairOf(token string, k holderKey, id string) int32 {
	th := x.holders(token)
	if k.isA {
		p, ok := th.addr[k.addr]
		if !ok {
			p = x.newPair(token, "0x"+hex.EncodeToString(k.addr[:]))
			th.addr[k.addr] = p
		}
		return p
	}
	if th.other == nil {
		th.other = map[string]int32{}
	}
	p, ok := th.other[id]
	if !ok {
		p = x.newPair(token, strings.Clone(id))
		th.other[x.pairs[p].Holder] = p
	}
	return p
}

// pair is pairOf for canonical ids.
func (x *intervals) pair(token, holder string) int32 {
	k, _ := keyOf(holder)
	return x.pairOf(token, k, holder)
}

func (x *intervals) newPair(token, holder string) int32 {
	if len(x.pairs) > 0 && x.pairs[len(x.pairs)-1].Token == token {
		token = x.pairs[len(x.pairs)-1].Token // share the token's copy
	} else {
		token = strings.Clone(token)
	}
	x.pairs = append(x.pairs, Pair{token, holder})
	x.state = append(x.state, running{since: x.o.OpeningTime})
	return int32(len(x.pairs) - 1)
}

func (k holderKey) zero() bool { return k.isA && k.addr == [20]byte{} }

// keyOf checks a holder id of chain data (valid as every id; when it starts
// with "0x", a well-formed address: transfer data has no other 0x ids) and
// returns its key.
func keyOf(id string) (holderKey, error) {
	var k holderKey
	if len(id) == 42 && id[0] == '0' && id[1] == 'x' {
		if _, err := hex.Decode(k.addr[:], unsafeBytes(id[2:])); err == nil {
			k.isA = true
			return k, nil
		}
	}
	_, err := transferID(id)
	return k, err
}

// transferID checks a token id of chain data, as keyOf, and returns its
// canonical form.
func transferID(id string) (string, error) {
	if IsAddress(id) {
		return CanonicalID(id), nil
	}
	if err := ValidateID(-1, "id", id); err != nil {
		return "", fmt.Errorf("%s %s", err.Value, err.Detail)
	}
	if strings.HasPrefix(id, "0x") || strings.HasPrefix(id, "0X") {
		return "", fmt.Errorf("%s is not an address (0x and 40 hex digits)", quoteID(id))
	}
	return id, nil
}

// check verifies the column lengths for kind.
func (c *TransferColumns) check(kind TransferKind) error {
	n := c.Len()
	bad := func(name string, got int) error {
		return fmt.Errorf("transfers: %s has %d rows, time has %d", name, got, n)
	}
	ids := map[string]IDColumn{"token_id": c.Token}
	switch kind {
	case KindTransfer:
		ids["from_address"], ids["to_address"] = c.From, c.To
	default:
		ids["holder_id"] = c.Holder
	}
	for name, col := range ids {
		if col.Offsets == nil {
			return fmt.Errorf("transfers: the %s column is required", name)
		}
		if col.Len() != n {
			return bad(name, col.Len())
		}
		if err := checkOffsets(name, col); err != nil {
			return err
		}
	}
	for name, l := range map[string]int{"block": len(c.Block), "log_index": len(c.LogIndex), "negative": len(c.Negative),
		"removed": len(c.Removed)} {
		if l != 0 && l != n {
			return bad(name, l)
		}
	}
	if len(c.Value) != 32*n {
		return fmt.Errorf("transfers: value has %d bytes, want 32 per row (%d)", len(c.Value), 32*n)
	}
	return nil
}

// order is the row indices in (Block, LogIndex) order, stable; nothing is
// sorted when they are in order already.
func (c *TransferColumns) order() []int {
	n := c.Len()
	order := make([]int, n)
	sorted := true
	key := func(i int) (int64, int64) {
		var b, l int64
		if c.Block != nil {
			b = c.Block[i]
		}
		if c.LogIndex != nil {
			l = c.LogIndex[i]
		}
		return b, l
	}
	for i := range order {
		order[i] = i
		if i > 0 && sorted {
			b0, l0 := key(i - 1)
			b1, l1 := key(i)
			sorted = b1 > b0 || b1 == b0 && l1 >= l0
		}
	}
	if !sorted {
		slices.SortStableFunc(order, func(a, b int) int {
			ba, la := key(a)
			bb, lb := key(b)
			return cmp.Or(cmp.Compare(ba, bb), cmp.Compare(la, lb))
		})
	}
	return order
}

// Events is the holds as exact-mode HoldEvents (ids shared with h.Pairs).
func (h *Holds) Events() []HoldEvent {
	out := make([]HoldEvent, len(h.Rows))
	wei := make([]Wei, len(h.Rows))
	for i := range h.Rows {
		r := &h.Rows[i]
		p := &h.Pairs[r.Pair]
		wei[i] = r.Weight.Bytes32()
		out[i] = HoldEvent{TokenID: p.Token, HolderID: p.Holder, Start: r.Start, End: r.End, HasEnd: r.HasEnd,
			Weight: 1, Wei: &wei[i]}
	}
	return out
}
