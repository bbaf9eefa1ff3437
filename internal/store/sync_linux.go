package store

import (
	"os"
	"syscall"
)

// syncData flushes a segment's data and size; fdatasync skips the inode
// timestamps that fsync would also write.
func syncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
