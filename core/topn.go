package core

import (
	"container/heap"
	"slices"
)

// topHeap keeps the best n rows seen so far. The root is the worst kept row,
// so a new row either loses to it (O(1)) or replaces it (O(log n)).
type topHeap struct {
	rows []HolderStat
	n    int
}

func (t *topHeap) Len() int           { return len(t.rows) }
func (t *topHeap) Less(i, j int) bool { return statLess(&t.rows[i], &t.rows[j]) > 0 } // worst first
func (t *topHeap) Swap(i, j int)      { t.rows[i], t.rows[j] = t.rows[j], t.rows[i] }
func (t *topHeap) Push(x any)         { t.rows = append(t.rows, x.(HolderStat)) }
func (t *topHeap) Pop() any {
	last := t.rows[len(t.rows)-1]
	t.rows = t.rows[:len(t.rows)-1]
	return last
}

func (t *topHeap) offer(s HolderStat) {
	if len(t.rows) < t.n {
		heap.Push(t, s)
		return
	}
	if statLess(&s, &t.rows[0]) < 0 {
		t.rows[0] = s
		heap.Fix(t, 0)
	}
}

func (t *topHeap) sorted() []HolderStat {
	slices.SortFunc(t.rows, func(x, y HolderStat) int { return statLess(&x, &y) })
	return t.rows
}
