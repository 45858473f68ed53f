package core

import (
	"math"
	"math/rand/v2"
	"testing"
)

// scoreBothWays scores columns with the vector kernel and with the Go loop
// alone; the two must agree bit for bit, errors included.
func scoreBothWays(t *testing.T, c *Columns, now int64, w Window) (float64, error) {
	t.Helper()
	if !useAVX2 {
		t.Skip("this CPU or build has no AVX2 kernel (purego tag, other arch): scoreFull is Go only")
	}
	got, err := scoreColumnsF(c, ScoreOptions{Now: now, Window: &w})
	useAVX2 = false
	want, werr := scoreColumnsF(c, ScoreOptions{Now: now, Window: &w})
	useAVX2 = true
	if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
		t.Fatalf("kernel error %v, Go error %v (now %d, window %+v)", err, werr, now, w)
	}
	if math.Float64bits(got) != math.Float64bits(want) {
		t.Fatalf("kernel %v (%#x), Go %v (%#x) over %d rows", got, math.Float64bits(got), want, math.Float64bits(want), c.Len())
	}
	return got, err
}

// randomColumns draws n rows; with bad set, one value somewhere is out of
// contract. Values cluster at the edges the kernel's compares must get right.
func randomColumns(r *rand.Rand, n int, bad bool) *Columns {
	c := &Columns{Start: make([]int64, n), End: make([]int64, n), HasEnd: make([]uint8, n), Weight: make([]float64, n)}
	times := []int64{MinTime, 1, MaxTime - 1, MaxTime}
	weights := []float64{0, math.Copysign(0, -1), 5e-324, 1e-300, 1, MaxWeight, math.Nextafter(MaxWeight, 0)}
	for i := range n {
		switch r.IntN(4) {
		case 0:
			c.Start[i] = times[r.IntN(len(times))]
		default:
			c.Start[i] = 1_600_000_000 + r.Int64N(100_000_000)
		}
		c.HasEnd[i] = []uint8{0, 1, 1, 255}[r.IntN(4)]
		c.End[i] = c.Start[i] + r.Int64N(MaxTime-c.Start[i]+1)
		if c.HasEnd[i] == 0 {
			c.End[i] = r.Int64() // ignored for open holds, whatever it is
		}
		if r.IntN(4) == 0 {
			c.Weight[i] = weights[r.IntN(len(weights))]
		} else {
			c.Weight[i] = r.Float64() * 1000
		}
	}
	if bad && n > 0 {
		i := r.IntN(n)
		switch r.IntN(7) {
		case 0:
			c.Start[i] = []int64{-1, MaxTime + 1, math.MinInt64, math.MaxInt64}[r.IntN(4)]
		case 1:
			c.HasEnd[i], c.End[i] = 1, c.Start[i]-1-r.Int64N(10)
		case 2:
			c.HasEnd[i], c.End[i] = 1, []int64{MaxTime + 1, math.MaxInt64, math.MinInt64}[r.IntN(3)]
		case 3:
			c.Weight[i] = []float64{-1, -5e-324, math.NaN(), math.Copysign(math.NaN(), -1), math.Inf(1), math.Inf(-1)}[r.IntN(6)]
		case 4:
			c.Weight[i] = math.Nextafter(MaxWeight, math.Inf(1))
		default: // several bad rows: the first one must be named
			c.Start[i] = -1
			c.Weight[r.IntN(n)] = math.NaN()
		}
	}
	return c
}

func TestScoreKernelMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	kernelRows := 0
	for trial := range 20_000 {
		n := r.IntN(41)
		if trial%100 == 0 {
			n = 1000 + r.IntN(100)
		}
		c := randomColumns(r, n, trial%3 == 0)
		now := []int64{MinTime, MaxTime, 1_650_000_000, r.Int64N(MaxTime + 1)}[r.IntN(4)]
		w := All
		if r.IntN(3) == 0 {
			a, b := r.Int64N(MaxTime+1), r.Int64N(MaxTime+1)
			w = Window{min(a, b), max(a, b) + 1}
		}
		scoreBothWays(t, c, now, w)
		kernelRows += n &^ 3
	}
	if kernelRows == 0 {
		t.Fatal("the kernel never ran")
	}
}

// TestScoreKernelNegativeZero: a weight of -0.0 is valid; the kernel flags it
// conservatively and the Go loop must still return the sum, not an error.
func TestScoreKernelNegativeZero(t *testing.T) {
	c := randomColumns(rand.New(rand.NewPCG(1, 2)), 64, false)
	c.Weight[17] = math.Copysign(0, -1)
	if _, err := scoreBothWays(t, c, MaxTime, All); err != nil {
		t.Fatalf("-0.0 weight rejected: %v", err)
	}
}

// FuzzScoreKernel is the differential check at fuzzing scale: arbitrary rows
// (see decodeEvents), kernel against Go loop.
func FuzzScoreKernel(f *testing.F) {
	f.Fuzz(func(t *testing.T, now, t0, t1 int64, data []byte) {
		c := toColumns(decodeEvents(data))
		c.Token, c.Holder = IDColumn{}, IDColumn{}
		w := All
		if t0 < t1 {
			w = Window{t0, t1}
		}
		scoreBothWays(t, c, now, w)
	})
}

// TestScoreInPartsCarryingAcc: a batch scored in consecutive parts, carrying
// ScoreOptions.Acc, gives the bits of scoring it whole, on both paths (the
// kernel's and the Go loop's, full columns and columns with some absent), with
// and without a window and as a TWAB; a failing part leaves Acc as it was.
func TestScoreInPartsCarryingAcc(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	part := func(c *Columns, lo, hi int) *Columns {
		p := &Columns{Start: c.Start[lo:hi]}
		if c.End != nil {
			p.End, p.HasEnd = c.End[lo:hi], c.HasEnd[lo:hi]
		}
		if c.Weight != nil {
			p.Weight = c.Weight[lo:hi]
		}
		return p
	}
	for trial := range 400 {
		n := 1 + r.IntN(300)
		c := randomColumns(r, n, false)
		if trial%3 == 1 {
			c.Weight = nil // the general loop, not scoreFull
		}
		now := int64(1_650_000_000 + r.Int64N(10_000_000))
		for _, o := range []ScoreOptions{{Now: now}, {Now: now, Window: &Window{1_620_000_000, 1_640_000_000}},
			{Now: now, Window: &Window{1_620_000_000, 1_640_000_000}, TWAB: true}} {
			for _, avx := range []bool{useAVX2, false} {
				saved := useAVX2
				useAVX2 = avx
				whole, err := ScoreColumns(c, o)
				if err != nil {
					t.Fatal(err)
				}
				var acc [2]float64
				var got Value
				for lo := 0; lo < n; {
					hi := min(n, lo+1+r.IntN(40))
					po := o
					po.Acc = &acc
					if got, err = ScoreColumns(part(c, lo, hi), po); err != nil {
						t.Fatal(err)
					}
					lo = hi
				}
				useAVX2 = saved
				if math.Float64bits(got.Float) != math.Float64bits(whole.Float) {
					t.Fatalf("trial %d (%+v, avx %v): parts %v, whole %v", trial, o, avx, got.Float, whole.Float)
				}
			}
		}
	}
	acc := [2]float64{12.5, 1e-15}
	bad := &Columns{Start: []int64{0, -1}, End: []int64{1, 1}, HasEnd: []uint8{1, 1}, Weight: []float64{1, 1}}
	if _, err := ScoreColumns(bad, ScoreOptions{Now: 10, Acc: &acc}); err == nil || acc != [2]float64{12.5, 1e-15} {
		t.Fatalf("a failing part: err %v, acc %v", err, acc)
	}
}
