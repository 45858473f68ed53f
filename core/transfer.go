package core

import (
	"cmp"
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
	// KindDelta: Holder's balance changes by Value (negative when Negative).
	KindDelta
)

// Transfer is one balance change. Ids alias the caller's memory; nothing
// here keeps them past the call.
type Transfer struct {
	Token    string
	From, To string // KindTransfer
	Holder   string // KindBalance, KindDelta
	Time     int64  // Unix seconds of the change (the block's timestamp)
	Block    int64  // ordering key; rows of one block keep LogIndex order
	LogIndex int64
	Value    uint256.Int
	Negative bool // KindDelta: Value is subtracted
	Removed  bool // a reorged row: skipped
}

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
	// ZeroHolder keeps the zero address as a holder (its balance is then
	// the negative of the supply: an error unless opening balances cover it).
	ZeroHolder bool
	// Row names row i in errors (file:line); nil: "row i".
	Row func(i int) string
}

// Hold is one interval: Holder held Weight of Token from Start to End (open
// when !HasEnd).
type Hold struct {
	Token, Holder string // owned (canonical form), shared by the holds of a pair
	Start, End    int64
	HasEnd        bool
	Weight        uint256.Int
}

// TransferError names the row a transfer failed at.
type TransferError struct {
	Row    string // "row 7", or what TransferOptions.Row said
	Field  string
	Reason string
	Detail string
}

func (e *TransferError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Row, e.Field, e.Detail)
}

type pairKey struct{ token, holder string }

// running is a pair's current balance since its last change; its ids are
// owned copies, shared by every hold of the pair.
type running struct {
	balance       uint256.Int
	since         int64
	token, holder string
}

// Intervals turns balance changes into holds: closed ones in the order the
// changes ended them, then the open ones (the current balances) by token
// and holder. Rows are ordered by (Block, LogIndex), stable (rows of one
// position keep input order); in input order already (cryo's and
// ethereum-etl's), nothing is sorted.
func Intervals(rows []Transfer, o TransferOptions) ([]Hold, error) {
	name := o.Row
	if name == nil {
		name = func(i int) string { return fmt.Sprintf("row %d", i) }
	}
	fail := func(i int, field, reason, detail string, args ...any) error {
		return &TransferError{Row: name(i), Field: field, Reason: reason, Detail: fmt.Sprintf(detail, args...)}
	}
	order := transferOrder(rows)
	state := make(map[pairKey]*running, len(o.Opening))
	var out []Hold
	get := func(token, holder string) *running {
		k := pairKey{token, holder}
		r := state[k]
		if r == nil {
			r = &running{since: o.OpeningTime, token: strings.Clone(token), holder: strings.Clone(holder)}
			state[pairKey{r.token, r.holder}] = r
		}
		return r
	}
	// change sets a pair's balance at t, closing the hold of the old one.
	change := func(t int64, r *running, nb *uint256.Int) {
		if !r.balance.IsZero() && t > r.since {
			out = append(out, Hold{Token: r.token, Holder: r.holder, Start: r.since, End: t, HasEnd: true, Weight: r.balance})
		}
		r.balance, r.since = *nb, t
	}
	for i, b := range o.Opening {
		tok, err := transferID(b.Token)
		if err != nil {
			return nil, fail(-1, "token_id", string(ReasonOutOfRange), "opening balance %d: %v", i, err)
		}
		h, err := transferID(b.Holder)
		if err != nil {
			return nil, fail(-1, "holder_id", string(ReasonOutOfRange), "opening balance %d: %v", i, err)
		}
		r := get(tok, h)
		if !r.balance.IsZero() {
			return nil, fail(-1, "holder_id", "duplicate", "opening balance %d: %s/%s appears twice", i, quoteID(tok), quoteID(h))
		}
		r.balance = b.Value
	}
	var nb uint256.Int
	for _, i := range order {
		t := &rows[i]
		if t.Removed {
			continue
		}
		if err := ValidateTime(i, "time", t.Time); err != nil {
			return nil, fail(i, "time", string(err.Reason), "%s", err.Detail)
		}
		if len(o.Opening) > 0 && t.Time < o.OpeningTime {
			return nil, fail(i, "time", string(ReasonOutOfRange), "%d is before the opening balances' time %d", t.Time, o.OpeningTime)
		}
		tok, err := transferID(t.Token)
		if err != nil {
			return nil, fail(i, "token_id", string(ReasonOutOfRange), "%v", err)
		}
		switch o.Kind {
		case KindTransfer:
			from, err := transferID(t.From)
			if err != nil {
				return nil, fail(i, "from_address", string(ReasonOutOfRange), "%v", err)
			}
			to, err := transferID(t.To)
			if err != nil {
				return nil, fail(i, "to_address", string(ReasonOutOfRange), "%v", err)
			}
			if from == to || t.Value.IsZero() {
				continue // a self-transfer or a zero transfer changes nothing
			}
			if from != ZeroAddress || o.ZeroHolder {
				r := get(tok, from)
				if r.balance.Lt(&t.Value) {
					return nil, fail(i, "value", string(ReasonNegative),
						"holder %s of token %s has %s and sends %s: its balance would go negative",
						quoteID(from), quoteID(tok), r.balance.Dec(), t.Value.Dec())
				}
				nb.Sub(&r.balance, &t.Value)
				change(t.Time, r, &nb)
			}
			if to != ZeroAddress || o.ZeroHolder {
				r := get(tok, to)
				if _, over := nb.AddOverflow(&r.balance, &t.Value); over {
					return nil, fail(i, "value", string(ReasonOutOfRange),
						"holder %s of token %s has %s and receives %s: past 2^256-1", quoteID(to), quoteID(tok),
						r.balance.Dec(), t.Value.Dec())
				}
				change(t.Time, r, &nb)
			}
		case KindBalance, KindDelta:
			h, err := transferID(t.Holder)
			if err != nil {
				return nil, fail(i, "holder_id", string(ReasonOutOfRange), "%v", err)
			}
			r := get(tok, h)
			switch {
			case o.Kind == KindBalance:
				nb = t.Value
			case t.Negative:
				if r.balance.Lt(&t.Value) {
					return nil, fail(i, "delta", string(ReasonNegative),
						"holder %s of token %s has %s and the delta is -%s: its balance would go negative",
						quoteID(h), quoteID(tok), r.balance.Dec(), t.Value.Dec())
				}
				nb.Sub(&r.balance, &t.Value)
			default:
				if _, over := nb.AddOverflow(&r.balance, &t.Value); over {
					return nil, fail(i, "delta", string(ReasonOutOfRange), "holder %s of token %s: balance past 2^256-1",
						quoteID(h), quoteID(tok))
				}
			}
			change(t.Time, r, &nb)
		default:
			return nil, fmt.Errorf("transfers: unknown kind %d", o.Kind)
		}
	}
	open := make([]Hold, 0, len(state))
	for _, r := range state {
		if !r.balance.IsZero() {
			open = append(open, Hold{Token: r.token, Holder: r.holder, Start: r.since, Weight: r.balance})
		}
	}
	slices.SortFunc(open, func(a, b Hold) int {
		return cmp.Or(strings.Compare(a.Token, b.Token), strings.Compare(a.Holder, b.Holder))
	})
	return append(out, open...), nil
}

// transferOrder is the indices of rows in (Block, LogIndex) order, stable;
// nil-cost when they are in order already.
func transferOrder(rows []Transfer) []int {
	order := make([]int, len(rows))
	sorted := true
	for i := range order {
		order[i] = i
		if i > 0 && (rows[i].Block < rows[i-1].Block ||
			rows[i].Block == rows[i-1].Block && rows[i].LogIndex < rows[i-1].LogIndex) {
			sorted = false
		}
	}
	if !sorted {
		slices.SortStableFunc(order, func(a, b int) int {
			return cmp.Or(cmp.Compare(rows[a].Block, rows[b].Block), cmp.Compare(rows[a].LogIndex, rows[b].LogIndex))
		})
	}
	return order
}

// transferID checks an id of chain data: non-empty valid UTF-8 as every id,
// and, when it starts with "0x", a well-formed address (transfer data has no
// other 0x ids), returned in canonical form.
func transferID(id string) (string, error) {
	if err := ValidateID(-1, "id", id); err != nil {
		return "", fmt.Errorf("%s %s", err.Value, err.Detail)
	}
	if strings.HasPrefix(id, "0x") || strings.HasPrefix(id, "0X") {
		if !IsAddress(id) {
			return "", fmt.Errorf("%s is not an address (0x and 40 hex digits)", quoteID(id))
		}
		return CanonicalID(id), nil
	}
	return id, nil
}

// HoldsEvents is holds as exact-mode HoldEvents (the ids and weights shared,
// not copied).
func HoldsEvents(holds []Hold) []HoldEvent {
	out := make([]HoldEvent, len(holds))
	wei := make([]Wei, len(holds))
	for i := range holds {
		h := &holds[i]
		wei[i] = h.Weight.Bytes32()
		out[i] = HoldEvent{TokenID: h.Token, HolderID: h.Holder, Start: h.Start, End: h.End, HasEnd: h.HasEnd,
			Weight: 1, Wei: &wei[i]}
	}
	return out
}
