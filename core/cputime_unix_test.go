//go:build unix

package core

import "syscall"

// processCPU is the CPU time (user + system) this process has used, in
// nanoseconds: every thread's, the garbage collector's included.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
