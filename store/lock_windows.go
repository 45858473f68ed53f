package store

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockOffset is where the one locked byte lies: far past the end of the
// file, because a Windows byte-range lock is mandatory and a lock on the
// PID text would stop anyone else from reading it.
const lockOffset = 1 << 62

// tryLock takes an exclusive lock on one byte of f without waiting: false
// (and no error) when another handle, in this process or another, holds it.
func tryLock(f *os.File) (bool, error) {
	ol := windows.Overlapped{Offset: uint32(lockOffset & 0xffffffff), OffsetHigh: uint32(lockOffset >> 32)}
	err := windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return false, nil
	}
	return err == nil, err
}
