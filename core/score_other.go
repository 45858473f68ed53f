//go:build !amd64 || purego

package core

var useAVX2 = false

// scoreKernel has no vector form on this platform: scoreFull does all the
// work in Go.
func scoreKernel(start, end []int64, hasEnd []uint8, weight []float64, now, t0 int64, acc *[2]float64) (done int, maybeBad bool) {
	return 0, false
}
