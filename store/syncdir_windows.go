package store

// syncDir is a no-op on Windows, which has no way to flush a directory:
// FlushFileBuffers on a directory handle fails with "Access denied". NTFS
// journals the names it creates and renames, so a crash leaves the
// directory consistent; the newest name may be lost, as on a Unix file
// system without the directory fsync.
func syncDir(dir string) error { return nil }
