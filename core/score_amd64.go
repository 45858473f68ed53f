//go:build !purego

package core

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly kernel; tests turn it off to check that both
// paths give the same bits.
var useAVX2 = cpu.X86.HasAVX2

//go:noescape
func scoreKernelAVX2(start, end *int64, hasEnd *uint8, weight *float64, n int, now, t0 int64, acc *[2]float64) (maybeBad uint64)

// scoreKernel runs the vector kernel over the longest multiple-of-4 prefix
// of the rows (all four slices have the same length), adding to acc. It
// returns how many rows it consumed and whether any of them may be invalid;
// done == 0 means the caller does all the work.
func scoreKernel(start, end []int64, hasEnd []uint8, weight []float64, now, t0 int64, acc *[2]float64) (done int, maybeBad bool) {
	n := len(start) &^ 3
	if !useAVX2 || n == 0 {
		return 0, false
	}
	bad := scoreKernelAVX2(&start[0], &end[0], &hasEnd[0], &weight[0], n, now, t0, acc)
	return n, bad != 0
}
