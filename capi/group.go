package main

/*
#include "poh_holdmetrics.h"
*/
import "C"

import (
	"math"
	"unsafe"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// poh_score_by_holder: the batch group-by kernel (core.ScoreByHolder) over
// columns, its rows a stats result read with poh_result_stats (copyGroup).

//export poh_score_by_holder
func poh_score_by_holder(c *C.poh_columns, opts *C.poh_group_options, out *C.poh_group_result,
	e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return status(e, func() error {
		if out == nil {
			return argError("out pointer is NULL")
		}
		o, err := readSized(opts, "poh_group_options")
		if err != nil {
			return err
		}
		if opts == nil {
			o.now = math.MinInt64
		}
		if err := checkFlags("poh_group_options", o.flags,
			C.POH_GROUP_WINDOW|C.POH_GROUP_TWAB|C.POH_GROUP_EXACT|C.POH_GROUP_BY_TOKEN); err != nil {
			return err
		}
		g := core.GroupOptions{ScoreOptions: core.ScoreOptions{Now: nowOr(o.now, wallClock),
			TWAB: o.flags&C.POH_GROUP_TWAB != 0, Exact: o.flags&C.POH_GROUP_EXACT != 0},
			ByToken: o.flags&C.POH_GROUP_BY_TOKEN != 0, N: rowCount(o.n), Threads: int(max(o.threads, 0))}
		switch {
		case o.flags&C.POH_GROUP_WINDOW != 0:
			g.Window = window(o.window)
		case g.TWAB:
			return argError("POH_GROUP_TWAB needs POH_GROUP_WINDOW (a TWAB needs a window)")
		}
		if o.threads < 0 {
			return argError("threads %d must be >= 0 (0: one per core)", int64(o.threads))
		}
		if err := writeSized(out, C.poh_group_result{}, "poh_group_result"); err != nil {
			return err
		}
		cols, err := columns(c)
		if err != nil {
			return err
		}
		rows, err := core.ScoreByHolder(cols, g)
		if err != nil {
			return err
		}
		r := &statsResult{group: rows}
		res := C.poh_group_result{rows: C.int64_t(rows.Len()), id_bytes: C.int64_t(len(rows.Holders.Data)),
			token_bytes: C.int64_t(len(rows.Tokens.Data))}
		res.result = C.poh_handle(newHandle(r))
		return writeSized(out, res, "poh_group_result")
	}())
}

// copyGroup is poh_result_stats for a poh_score_by_holder result: whole
// columns at a time (the caller checked rows_cap and ids_cap).
func copyGroup(g *core.Grouped, o *C.poh_stat_columns) error {
	n := int64(g.Len())
	tokens := g.Tokens.Data
	if o.token_ids != nil && int64(o.token_ids_cap) < int64(len(tokens)) {
		return tooSmall("result needs %s token id bytes", itoa(int64(len(tokens))))
	}
	copy(cSlice((*float64)(unsafe.Pointer(o.score)), n), g.Score)
	for _, col := range []struct {
		dst *C.int64_t
		src []int64
	}{{o.total_seconds, g.TotalSeconds}, {o.events, g.Events}, {o.open_holds, g.OpenHolds}, {o.tokens, g.TokenCount}} {
		copy(cSlice((*int64)(unsafe.Pointer(col.dst)), n), col.src)
	}
	if up := cSlice((*int64)(unsafe.Pointer(o.updated_at)), n); up != nil {
		if g.UpdatedAt != nil {
			copy(up, g.UpdatedAt)
		} else {
			for i := range up {
				up[i] = g.Now
			}
		}
	}
	copy(cSlice((*int64)(unsafe.Pointer(o.id_offsets)), n+1), g.Holders.Offsets)
	copy(cSlice((*byte)(unsafe.Pointer(o.ids)), int64(len(g.Holders.Data))), g.Holders.Data)
	if ex := cSlice((*byte)(unsafe.Pointer(o.exact)), 48*n); ex != nil {
		for i := range g.Exact {
			b := g.Exact[i].Bytes()
			copy(ex[48*i:], b[:])
		}
		if g.Exact == nil {
			clear(ex)
		}
	}
	if offs := cSlice((*int64)(unsafe.Pointer(o.token_offsets)), n+1); offs != nil {
		if g.Tokens.Offsets != nil {
			copy(offs, g.Tokens.Offsets)
		} else {
			clear(offs)
		}
	}
	copy(cSlice((*byte)(unsafe.Pointer(o.token_ids)), int64(len(tokens))), tokens)
	return nil
}
