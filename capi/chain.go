package main

/*
#include "poh_holdmetrics.h"
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"math/big"
	"unsafe"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// Chain data and rewards: transfers → holds (poh_transfers), and the exact
// split of a pool (poh_allocate).

// holdsResult is what poh_transfers made.
type holdsResult struct {
	h                       *core.Holds
	tokenBytes, holderBytes int64
}

func (r *holdsResult) size() (int64, int64) {
	return int64(len(r.h.Rows)), r.tokenBytes + r.holderBytes
}

// awardsResult is what poh_allocate made.
type awardsResult struct{ awards []core.Award }

func (r *awardsResult) size() (int64, int64) { return int64(len(r.awards)), 0 }

// transferColumns views the C struct as core.TransferColumns (no copy).
func transferColumns(p *C.poh_transfer_columns, name string, opening bool) (*core.TransferColumns, error) {
	c, err := readSized(p, name)
	if err != nil {
		return nil, err
	}
	if err := checkFlags(name, c.flags, 0); err != nil {
		return nil, err
	}
	n := int64(c.n)
	if n < 0 || n > maxRows {
		return nil, argError("%s: row count %d is out of range [0, %d]", name, n, int64(maxRows))
	}
	if !opening && n > 0 && c.time == nil {
		return nil, argError("%s: time is NULL with %d rows", name, n)
	}
	if n > 0 && c.value == nil {
		return nil, argError("%s: value is NULL with %d rows", name, n)
	}
	t := &core.TransferColumns{
		Time:     cSlice((*int64)(unsafe.Pointer(c.time)), n),
		Block:    cSlice((*int64)(unsafe.Pointer(c.block)), n),
		LogIndex: cSlice((*int64)(unsafe.Pointer(c.log_index)), n),
		Value:    cSlice((*byte)(unsafe.Pointer(c.value)), 32*n),
		Negative: cSlice((*uint8)(unsafe.Pointer(c.negative)), n),
		Removed:  cSlice((*uint8)(unsafe.Pointer(c.removed)), n),
	}
	if t.Time == nil {
		t.Time = make([]int64, n) // opening balances have no time of their own
	}
	if t.Value == nil {
		t.Value = []byte{}
	}
	for _, col := range []struct {
		dst     *core.IDColumn
		label   string
		data    *C.char
		dataLen C.int64_t
		offsets *C.int64_t
	}{{&t.Token, "token", c.token_data, c.token_data_len, c.token_offsets},
		{&t.From, "from", c.from_data, c.from_data_len, c.from_offsets},
		{&t.To, "to", c.to_data, c.to_data_len, c.to_offsets},
		{&t.Holder, "holder", c.holder_data, c.holder_data_len, c.holder_offsets}} {
		if *col.dst, err = idColumn(col.label, col.data, col.dataLen, col.offsets, n); err != nil {
			return nil, err
		}
	}
	return t, nil
}

//export poh_transfers
func poh_transfers(rows, opening *C.poh_transfer_columns, opts *C.poh_transfer_options, out *C.poh_transfer_result,
	e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return status(e, func() error {
		if out == nil || rows == nil {
			return argError("rows and out must not be NULL")
		}
		o, err := readSized(opts, "poh_transfer_options")
		if err != nil {
			return err
		}
		if opts == nil {
			o.now = -1 << 63
		}
		if err := checkFlags("poh_transfer_options", o.flags,
			C.POH_TRANSFERS_BALANCE|C.POH_TRANSFERS_DELTA|C.POH_TRANSFERS_ZERO_HOLDER); err != nil {
			return err
		}
		to := core.TransferOptions{OpeningTime: int64(o.opening_time), ZeroHolder: o.flags&C.POH_TRANSFERS_ZERO_HOLDER != 0}
		switch o.flags & (C.POH_TRANSFERS_BALANCE | C.POH_TRANSFERS_DELTA) {
		case C.POH_TRANSFERS_BALANCE:
			to.Kind = core.KindBalance
		case C.POH_TRANSFERS_DELTA:
			to.Kind = core.KindDelta
		case C.POH_TRANSFERS_BALANCE | C.POH_TRANSFERS_DELTA:
			return argError("POH_TRANSFERS_BALANCE and POH_TRANSFERS_DELTA: pass one row kind")
		}
		cols, err := transferColumns(rows, "poh_transfer_columns", false)
		if err != nil {
			return err
		}
		if opening != nil {
			oc, err := transferColumns(opening, "opening", true)
			if err != nil {
				return err
			}
			if oc.Token.Len() != oc.Len() || oc.Holder.Len() != oc.Len() {
				return argError("opening: token and holder columns are required")
			}
			for i := 0; i < oc.Len(); i++ {
				var b core.Balance
				b.Token, b.Holder = idAt(oc.Token, i), idAt(oc.Holder, i)
				b.Value.SetBytes32(oc.Value[32*i : 32*i+32])
				to.Opening = append(to.Opening, b)
			}
		}
		holds, err := core.Intervals(cols, to)
		if err != nil {
			return err
		}
		res := C.poh_transfer_result{rows: C.int64_t(len(holds.Rows)), pairs: C.int64_t(len(holds.Pairs))}
		r := &holdsResult{h: holds}
		for i := range holds.Rows {
			p := &holds.Pairs[holds.Rows[i].Pair]
			r.tokenBytes += int64(len(p.Token))
			r.holderBytes += int64(len(p.Holder))
		}
		res.token_bytes, res.holder_bytes = C.int64_t(r.tokenBytes), C.int64_t(r.holderBytes)
		if o.record_into != 0 {
			a, ok := lookup[*aggregator](o.record_into)
			if !ok {
				return errBadHandle
			}
			if !a.agg.StateConfig().Exact {
				return argError("record_into: the aggregator must be in exact mode (POH_AGGREGATOR_EXACT): holds " +
					"from transfers have integer weights")
			}
			if _, err := a.record(nowOr(o.now, a.agg.Now), holds.Events(), core.RecordOptions{}); err != nil {
				return err
			}
		} else {
			res.result = C.poh_handle(newHandle(r))
		}
		return writeSized(out, res, "poh_transfer_result")
	}())
}

// idAt is row i of an id column (aliasing C memory for the call).
func idAt(c core.IDColumn, i int) string {
	b := c.Data[c.Offsets[i]:c.Offsets[i+1]]
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

//export poh_result_holds
func poh_result_holds(r C.poh_handle, out *C.poh_hold_columns, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withResult(r, e, func(h *holdsResult) error {
		if out == nil {
			return argError("out pointer is NULL")
		}
		o, err := readSized(out, "poh_hold_columns")
		if err != nil {
			return err
		}
		n := int64(len(h.h.Rows))
		if int64(o.rows_cap) < n || (o.token != nil && int64(o.token_cap) < h.tokenBytes) ||
			(o.holder != nil && int64(o.holder_cap) < h.holderBytes) {
			return tooSmall("result needs %s rows, %s token bytes and %s holder bytes", itoa(n), itoa(h.tokenBytes),
				itoa(h.holderBytes))
		}
		start, end := cSlice((*int64)(unsafe.Pointer(o.start)), n), cSlice((*int64)(unsafe.Pointer(o.end)), n)
		hasEnd, weight := cSlice((*uint8)(unsafe.Pointer(o.has_end)), n), cSlice((*byte)(unsafe.Pointer(o.weight)), 32*n)
		tok, tokOff := cSlice((*byte)(unsafe.Pointer(o.token)), h.tokenBytes), cSlice((*int64)(unsafe.Pointer(o.token_offsets)), n+1)
		hol, holOff := cSlice((*byte)(unsafe.Pointer(o.holder)), h.holderBytes), cSlice((*int64)(unsafe.Pointer(o.holder_offsets)), n+1)
		var to, ho int64
		if tokOff != nil {
			tokOff[0] = 0
		}
		if holOff != nil {
			holOff[0] = 0
		}
		for i := range h.h.Rows {
			row := &h.h.Rows[i]
			p := &h.h.Pairs[row.Pair]
			if start != nil {
				start[i] = row.Start
			}
			if end != nil {
				end[i] = row.End
			}
			if hasEnd != nil {
				hasEnd[i] = 0
				if row.HasEnd {
					hasEnd[i] = 1
				}
			}
			if weight != nil {
				b := row.Weight.Bytes32()
				copy(weight[32*i:], b[:])
			}
			if tok != nil {
				copy(tok[to:], p.Token)
			}
			if hol != nil {
				copy(hol[ho:], p.Holder)
			}
			to += int64(len(p.Token))
			ho += int64(len(p.Holder))
			if tokOff != nil {
				tokOff[i+1] = to
			}
			if holOff != nil {
				holOff[i+1] = ho
			}
		}
		return nil
	})
}

//export poh_allocate
func poh_allocate(shares *C.poh_share_columns, opts *C.poh_allocate_options, result *C.poh_handle,
	e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return status(e, func() error {
		if shares == nil || opts == nil || result == nil {
			return argError("shares, opts and result must not be NULL")
		}
		s, err := readSized(shares, "poh_share_columns")
		if err != nil {
			return err
		}
		o, err := readSized(opts, "poh_allocate_options")
		if err != nil {
			return err
		}
		if err := checkFlags("poh_share_columns", s.flags, C.POH_SHARES_INT64|C.POH_SHARES_DECIMAL128); err != nil {
			return err
		}
		width := int64(48) // bytes per exact score
		switch s.flags {
		case C.POH_SHARES_INT64:
			width = 8
		case C.POH_SHARES_DECIMAL128:
			width = 16
		case C.POH_SHARES_INT64 | C.POH_SHARES_DECIMAL128:
			return argError("poh_share_columns: POH_SHARES_INT64 and POH_SHARES_DECIMAL128: pass one layout")
		}
		if s.flags != 0 && s.exact == nil && s.n > 0 {
			return argError("poh_share_columns: a POH_SHARES_* layout is of exact, which is NULL")
		}
		if err := checkFlags("poh_allocate_options", o.flags, C.POH_ALLOCATE_CAP); err != nil {
			return err
		}
		n := int64(s.n)
		switch {
		case n < 0 || n > maxRows:
			return argError("share count %d is out of range", n)
		case (s.score == nil) == (s.exact == nil) && n > 0:
			return argError("shares: pass exactly one of score and exact")
		}
		ids, err := idColumn("ids", s.ids, s.ids_len, s.id_offsets, n)
		if err != nil {
			return err
		}
		if ids.Offsets == nil && n > 0 {
			return argError("shares: id_offsets is NULL")
		}
		if ids.Offsets != nil {
			if err := (&core.Columns{Start: make([]int64, n), Holder: ids}).CheckLengths(); err != nil {
				return err
			}
		}
		list := make([]core.Share, n)
		score := cSlice((*float64)(unsafe.Pointer(s.score)), n)
		exact := cSlice((*byte)(unsafe.Pointer(s.exact)), width*n)
		xs := make([]core.Int, len(exact)/int(width))
		for i := range list {
			list[i].HolderID = idAt(ids, i)
			if score != nil {
				list[i].Float = score[i]
				continue
			}
			b := exact[width*int64(i) : width*int64(i+1)]
			switch width {
			case 48:
				xs[i].SetBytes((*[48]byte)(b))
			case 8:
				v := int64(binary.NativeEndian.Uint64(b))
				if v < 0 {
					return argError("shares[%d] (%s): score %d must be >= 0", i, core.QuoteID(list[i].HolderID), v)
				}
				xs[i][0] = uint64(v)
			case 16:
				lo, hi := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
				if int64(hi) < 0 {
					v := new(big.Int).Lsh(new(big.Int).SetUint64(hi), 64)
					v.Or(v, new(big.Int).SetUint64(lo)).Sub(v, new(big.Int).Lsh(big.NewInt(1), 128))
					return argError("shares[%d] (%s): score %s must be >= 0", i, core.QuoteID(list[i].HolderID), v)
				}
				xs[i][0], xs[i][1] = lo, hi
			}
			list[i].Exact = &xs[i]
		}
		ao := core.AllocateOptions{MinScore: float64(o.min_score)}
		if o.flags&C.POH_ALLOCATE_CAP != 0 {
			ao.Cap = bigOf(&o.cap)
		}
		awards, err := core.Allocate(list, bigOf(&o.pool), ao)
		switch {
		case errors.Is(err, core.ErrInfeasibleCap), errors.Is(err, core.ErrNoneEligible):
			return &statusError{statusState, err.Error()}
		case err != nil && !errors.Is(err, core.ErrInvalidEvent):
			return argError("%v", err)
		case err != nil:
			return err
		}
		*result = C.poh_handle(newHandle(&awardsResult{awards}))
		return nil
	}())
}

// bigOf reads 48 big-endian bytes.
func bigOf(b *[48]C.uint8_t) *big.Int {
	return new(big.Int).SetBytes(unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), 48))
}

//export poh_result_awards
func poh_result_awards(r C.poh_handle, out *C.poh_award_columns, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withResult(r, e, func(a *awardsResult) error {
		if out == nil {
			return argError("out pointer is NULL")
		}
		o, err := readSized(out, "poh_award_columns")
		if err != nil {
			return err
		}
		if err := checkFlags("poh_award_columns", o.flags, C.POH_AWARDS_DECIMAL128|C.POH_AWARDS_DECIMAL256); err != nil {
			return err
		}
		n := int64(len(a.awards))
		if int64(o.rows_cap) < n {
			return tooSmall("result needs %s rows", itoa(n))
		}
		width, digits := int64(48), 0
		switch o.flags {
		case C.POH_AWARDS_DECIMAL128:
			width, digits = 16, 38
		case C.POH_AWARDS_DECIMAL256:
			width, digits = 32, 76
		case C.POH_AWARDS_DECIMAL128 | C.POH_AWARDS_DECIMAL256:
			return argError("poh_award_columns: POH_AWARDS_DECIMAL128 and POH_AWARDS_DECIMAL256: pass one layout")
		}
		if digits > 0 && len(a.awards) > 0 {
			// The largest amount comes first (amount descending).
			limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(digits)), nil)
			if top := a.awards[0].Amount.Big(); top.Cmp(limit) >= 0 {
				return argError("poh_award_columns: amount %s has more than %d digits", top, digits)
			}
		}
		share, amount := cSlice((*int64)(unsafe.Pointer(o.share)), n), cSlice((*byte)(unsafe.Pointer(o.amount)), width*n)
		for i := range a.awards {
			w := &a.awards[i]
			if share != nil {
				share[i] = int64(w.Share)
			}
			if amount == nil {
				continue
			}
			if width == 48 {
				*(*[48]byte)(amount[48*i : 48*i+48]) = w.Amount.Bytes()
				continue
			}
			for k := range width / 8 {
				binary.LittleEndian.PutUint64(amount[width*int64(i)+8*k:], w.Amount[k])
			}
		}
		return nil
	})
}
