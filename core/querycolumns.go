package core

import (
	"slices"
	"strings"
)

// QueryColumns is Query with the rows as columns: the same rows, bits and
// order, in a Grouped whose UpdatedAt is each row's. Every holder's row (no
// Token, Holder or N) is written straight from the holders into
// pointer-free columns (ids in one buffer), so that a snapshot of many
// holders allocates a few large blocks that the garbage collector never
// scans, instead of a row with a string per holder; and the ranking moves
// each column once. Any other query is Query's rows, copied.
//
// alloc, if not nil, provides the memory of those columns (not of Exact's):
// a caller that hands the columns on outside Go (the C API) can keep them
// off the Go heap, so that a snapshot of many holders does not bring on a
// collection whose cost is the aggregator's whole state. A column outgrows
// what alloc gave it only if holders are added during the walk; it then
// grows on the Go heap.
func (a *Aggregator) QueryColumns(q Query, alloc ColumnAlloc) (*Grouped, error) {
	if q.Token != "" || q.Holder != "" || q.N > 0 {
		rows, err := a.Query(q)
		if err != nil {
			return nil, err
		}
		return groupedOf(rows, q.Now, a.cfg.exact), nil
	}
	v, err := q.validate(a)
	if err != nil {
		return nil, err
	}
	if alloc == nil {
		alloc = goAlloc{}
	}
	n, idBytes := 0, 0
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		n += sh.holders.n
		idBytes += sh.tokens.idLive
		sh.mu.Unlock()
	}
	g := &Grouped{Now: q.Now, Score: alloc.Float64s(n)[:0], TotalSeconds: alloc.Int64s(n)[:0],
		Events: alloc.Int64s(n)[:0], OpenHolds: alloc.Int64s(n)[:0], TokenCount: alloc.Int64s(n)[:0],
		UpdatedAt: alloc.Int64s(n)[:0]}
	g.Holders = IDColumn{Data: alloc.Bytes(idBytes)[:0], Offsets: alloc.Int64s(n + 1)[:1]}
	g.Holders.Offsets[0] = 0
	if v.exact {
		g.Exact = make([]Int, 0, n)
	}
	a.eachGroup(func(group []holder) {
		for k := range group {
			if h := &group[k]; h.id != "" {
				g.append(h.stat(v))
			}
		}
	})
	if !q.Unordered {
		g.rank(alloc)
	}
	return g, nil
}

// ColumnAlloc provides the memory of QueryColumns' columns. It must hand out
// memory that no Go pointer is stored into (the columns hold numbers and
// bytes only); it need not be zeroed.
type ColumnAlloc interface {
	Float64s(n int) []float64
	Int64s(n int) []int64
	Bytes(n int) []byte
}

// goAlloc is the Go heap.
type goAlloc struct{}

func (goAlloc) Float64s(n int) []float64 { return make([]float64, n) }
func (goAlloc) Int64s(n int) []int64     { return make([]int64, n) }
func (goAlloc) Bytes(n int) []byte       { return make([]byte, n) }

// append adds st as the last row.
func (g *Grouped) append(st HolderStat) {
	g.Holders.Data = append(g.Holders.Data, st.HolderID...)
	g.Holders.Offsets = append(g.Holders.Offsets, int64(len(g.Holders.Data)))
	g.Score = append(g.Score, st.Score)
	g.TotalSeconds = append(g.TotalSeconds, st.TotalSeconds)
	g.Events = append(g.Events, st.Events)
	g.OpenHolds = append(g.OpenHolds, st.OpenHolds)
	g.TokenCount = append(g.TokenCount, int64(st.Tokens))
	g.UpdatedAt = append(g.UpdatedAt, st.UpdatedAt)
	if st.Exact != nil {
		g.Exact = append(g.Exact, *st.Exact)
	}
}

// groupedOf copies query rows into columns.
func groupedOf(rows []HolderStat, now int64, exact bool) *Grouped {
	n := len(rows)
	g := &Grouped{Now: now, Score: make([]float64, 0, n), TotalSeconds: make([]int64, 0, n),
		Events: make([]int64, 0, n), OpenHolds: make([]int64, 0, n), TokenCount: make([]int64, 0, n),
		UpdatedAt: make([]int64, 0, n)}
	g.Holders = IDColumn{Offsets: make([]int64, 1, n+1)}
	if exact {
		g.Exact = make([]Int, 0, n)
	}
	for i := range rows {
		g.append(rows[i])
	}
	return g
}

// rank reorders the rows into the ranking order (statLess, or exactLess in
// exact mode), as Query's sortRows does for rows; its new columns come from
// alloc (Exact's from the Go heap).
func (g *Grouped) rank(alloc ColumnAlloc) {
	n := g.Len()
	if n < 2 {
		return
	}
	id := func(i int32) string { return g.Holders.at(int(i)) }
	keys := make([]rankKey, n)
	if g.Exact != nil {
		for i := range keys {
			keys[i].i = int32(i)
		}
		slices.SortFunc(keys, func(x, y rankKey) int {
			if c := g.Exact[y.i].Cmp(&g.Exact[x.i]); c != 0 {
				return c
			}
			return strings.Compare(id(x.i), id(y.i))
		})
	} else {
		for i := range keys {
			keys[i] = rankKey{rankOf(g.Score[i]), int32(i)}
		}
		keys = rankSort(keys, id)
	}
	// Each column is gathered into a scratch buffer, which then takes the
	// place of the next column's old buffer.
	f := alloc.Float64s(n)
	for j, k := range keys {
		f[j] = g.Score[k.i]
	}
	g.Score = f
	tmp := alloc.Int64s(n)
	for _, col := range []*[]int64{&g.TotalSeconds, &g.Events, &g.OpenHolds, &g.TokenCount, &g.UpdatedAt} {
		c := *col
		for j, k := range keys {
			tmp[j] = c[k.i]
		}
		*col, tmp = tmp, c
	}
	if g.Exact != nil {
		x := make([]Int, n)
		for j, k := range keys {
			x[j] = g.Exact[k.i]
		}
		g.Exact = x
	}
	ids := IDColumn{Data: alloc.Bytes(len(g.Holders.Data))[:0], Offsets: alloc.Int64s(n + 1)}
	ids.Offsets[0] = 0
	for j, k := range keys {
		ids.Data = append(ids.Data, g.Holders.Data[g.Holders.Offsets[k.i]:g.Holders.Offsets[k.i+1]]...)
		ids.Offsets[j+1] = int64(len(ids.Data))
	}
	g.Holders = ids
}
