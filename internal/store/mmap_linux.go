package store

import (
	"os"
	"syscall"
)

// mapShared reserves size bytes of disk for f and maps them shared, so
// bytes copied in are in the page cache at once: they survive the process
// being killed without a write system call. fallocate reserves the blocks
// first: a full disk fails here, never later as SIGBUS on a page fault.
func mapShared(f *os.File, size int) ([]byte, error) {
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, int64(size)); err != nil {
		return nil, &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: f.Name(), Err: err}
	}
	return b, nil
}

func unmap(b []byte) error { return syscall.Munmap(b) }

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14).
const madvPopulateWrite = 23

// prefault makes b's pages present and writable, as a write to each would,
// without changing a byte: the page faults (and the filesystem's work
// behind them) happen here instead of in a writer's copy. An old kernel
// refuses it, which only loses the head start.
func prefault(b []byte) { _ = syscall.Madvise(b, madvPopulateWrite) }
