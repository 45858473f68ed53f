//go:build !unix

package core

// processCPU is not measured here: the benchmarks report no cpu-ns/event.
func processCPU() int64 { return 0 }
