package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"unsafe"
)

// The ring: with NoSync, a batch is acknowledged once it is copied into a
// small file, mapped shared, that is written round and round. The page
// cache keeps it through a kill -9 of the daemon, and after the first lap
// no page of it ever changes its mapping: the proxy's path takes no page
// fault and causes no TLB shootdown. (Copying into a mapped segment did:
// every page is faulted in once, and every fdatasync write-protects the
// pages it cleans, so the next store into each faults again. On this
// project's virtual machines that cost more than all the rest of a call
// cycle; BENCHMARKS.md, issue 12.) The ring is never fsync'd by us.
//
// The drain (the flusher goroutine, flush.go) copies the ring's entries
// into the current segment with pwrite, then moves the ring's tail past
// them: from then on the segment's page cache holds them, which survives
// a kill -9 as well. With the interval flush it then fdatasyncs the
// segment.
//
// The ring is replayed only within the boot that wrote it: after a kernel
// crash or a power cut any mix of its pages may be on disk, so a ring
// written under another boot ID is ignored, and the segments (flushed up
// to the interval) are all there is. Within one boot, the entries from the
// tail on, up to the first one that does not check out, are a run of
// consecutive batches that ends with the last one written; every batch
// before the tail is in a segment. Replaying that run on top of the
// segments gives each key its latest value even where the two overlap, as
// every op sets or removes a whole value.
//
// File: a header page, then the entries.
//
//	header: magic [8] | boot ID [40] | epoch u64 | tail u64
//	entry:  len u32 | crc u32 | pos u64 | payload [len] | zeros to 8 bytes
//
// pos is the entry's logical position: bytes appended since the ring was
// reset, counting the gap skipped when an entry does not fit before the
// end of the file and starts the next lap at the beginning instead. The
// entry's byte offset is pos mod the data size. The CRC (Castagnoli)
// covers the epoch, pos, len and payload, so an entry of an earlier lap or
// of an earlier epoch (a ring reset at each Open) never checks out at a
// position it was not written for. tail is stored by one aligned 8-byte
// store, so a kill -9 never leaves half of it.
const (
	ringName       = "ring"
	ringHeaderSize = 4096
	ringEntryHead  = 16
	// DefaultRingSize is the ring's data size: at 32,000 batches/s of
	// 1 KiB it holds 128 ms, six times the default flush interval.
	DefaultRingSize = 4 << 20

	ringOffBoot  = 8
	ringOffEpoch = 48
	ringOffTail  = 56
)

var ringMagic = []byte("CCRING\x00\x01")

type ring struct {
	f       *os.File
	mm      []byte // the whole file, mapped shared
	data    []byte // mm[ringHeaderSize:]
	epoch   uint64
	epochLE [8]byte

	// head is where the next entry goes; written by the appender (who
	// holds Log.rmu) and published in pub once the entry is whole.
	head uint64
	pub  atomic.Uint64
	// tail is the first entry not yet in a segment; moved by the drain
	// (who holds Log.wmu), read by the appender to know the free space.
	tail atomic.Uint64
}

func ringEntrySize(n int) uint64 { return uint64(ringEntryHead + (n+7)&^7) }

// entryCRC is the CRC of entry e, its len and pos written: over the epoch
// (little-endian in epochLE), pos, len and payload. It reads them where
// they are, so the proxy's path allocates nothing for it.
func entryCRC(epochLE *[8]byte, e []byte, n int) uint32 {
	c := crc32.Checksum(epochLE[:], castagnoli)
	c = crc32.Update(c, castagnoli, e[8:16])
	c = crc32.Update(c, castagnoli, e[0:4])
	return crc32.Update(c, castagnoli, e[ringEntryHead:ringEntryHead+n])
}

// BootID names the running kernel's boot ("" where it cannot be read):
// what was written to the page cache under this ID and not flushed is
// lost only if the ID has changed since.
func BootID() string { return string(bootID()) }

// bootID is BootID as bytes; nil matches no ring.
func bootID() []byte {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return nil
	}
	return bytes.TrimSpace(b)
}

// readRing returns the payloads of the ring in dir that are still to be
// replayed, concatenated (each is whole frames), or nil when there is no
// ring, it was written under another boot, or it holds nothing.
func readRing(dir string) ([]byte, error) {
	buf, err := os.ReadFile(filepath.Join(dir, ringName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return parseRing(buf, bootID()), nil
}

// parseRing returns what readRing does, from the ring file's bytes and
// the running boot's ID.
func parseRing(buf, boot []byte) []byte {
	if len(buf) <= ringHeaderSize || !bytes.Equal(buf[:8], ringMagic) || len(boot) == 0 ||
		!bytes.Equal(bytes.TrimRight(buf[ringOffBoot:ringOffEpoch], "\x00"), boot) {
		return nil
	}
	var epoch [8]byte
	binary.LittleEndian.PutUint64(epoch[:], binary.NativeEndian.Uint64(buf[ringOffEpoch:]))
	tail := binary.NativeEndian.Uint64(buf[ringOffTail:])
	data := buf[ringHeaderSize:]
	var out []byte
	for pos := tail; pos-tail < uint64(len(data)); {
		payload, size, ok := ringEntryAt(data, &epoch, pos)
		if !ok {
			// The writer skips to the next lap when an entry does not
			// fit before the end of the file.
			next := (pos/uint64(len(data)) + 1) * uint64(len(data))
			if pos%uint64(len(data)) == 0 || next-tail >= uint64(len(data)) {
				break
			}
			if payload, size, ok = ringEntryAt(data, &epoch, next); !ok {
				break
			}
			pos = next
		}
		out = append(out, payload...)
		pos += size
	}
	return out
}

// ringEntryAt returns the entry written at logical position pos, if the
// bytes there are one.
func ringEntryAt(data []byte, epoch *[8]byte, pos uint64) ([]byte, uint64, bool) {
	off := pos % uint64(len(data))
	if off+ringEntryHead > uint64(len(data)) {
		return nil, 0, false
	}
	e := data[off:]
	n := binary.LittleEndian.Uint32(e)
	if binary.LittleEndian.Uint64(e[8:]) != pos || n == 0 || off+ringEntrySize(int(n)) > uint64(len(data)) {
		return nil, 0, false
	}
	if binary.LittleEndian.Uint32(e[4:]) != entryCRC(epoch, e, int(n)) {
		return nil, 0, false
	}
	return e[ringEntryHead : ringEntryHead+int(n)], ringEntrySize(int(n)), true
}

// openRing makes the ring in dir ready for writing, empty, under a new
// epoch: call it only once what it held is replayed and durable.
func openRing(dir string, size int) (*ring, error) {
	f, err := os.OpenFile(filepath.Join(dir, ringName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: ring: %w", err)
	}
	// Exactly this size: a reader takes the data size from the file's.
	err = f.Truncate(int64(ringHeaderSize + size))
	var mm []byte
	if err == nil {
		mm, err = mapShared(f, ringHeaderSize+size)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: ring: %w", err)
	}
	r := &ring{f: f, mm: mm, data: mm[ringHeaderSize:], epoch: rand.Uint64() | 1}
	binary.LittleEndian.PutUint64(r.epochLE[:], r.epoch)
	// The new epoch before the tail: stopped in between, the old
	// entries no longer check out, and they are all in a segment.
	copy(mm, ringMagic)
	boot := mm[ringOffBoot:ringOffEpoch]
	clear(boot)
	copy(boot, bootID())
	atomic.StoreUint64(r.word(ringOffEpoch), r.epoch)
	atomic.StoreUint64(r.word(ringOffTail), 0)
	// Make every page present and writable now, not on the proxy's path.
	prefault(mm)
	return r, nil
}

func (r *ring) word(off int) *uint64 { return (*uint64)(unsafe.Pointer(&r.mm[off])) }

// append copies payload into the ring as one entry; false when it does
// not fit in the free space (or at all). The caller holds Log.rmu.
func (r *ring) append(payload []byte) bool {
	n := uint64(len(r.data))
	size := ringEntrySize(len(payload))
	pos := r.head
	if off := pos % n; off+size > n {
		pos += n - off // the next lap
	}
	if size > n || pos+size-r.tail.Load() > n {
		return false
	}
	e := r.data[pos%n:]
	binary.LittleEndian.PutUint32(e, uint32(len(payload)))
	binary.LittleEndian.PutUint64(e[8:], pos)
	copy(e[ringEntryHead:], payload)
	binary.LittleEndian.PutUint32(e[4:], entryCRC(&r.epochLE, e, len(payload)))
	r.head = pos + size
	r.pub.Store(r.head)
	return true
}

// taken returns the payloads from the tail to the published head,
// appended to dst, and the head they end at. Only the drain calls it.
// Where the appender skipped to the next lap it left the bytes as they
// were, maybe an entry of an earlier run whose pos is the same number:
// only an entry that checks out (its CRC covers this run's epoch) is
// taken, as at replay.
func (r *ring) taken(dst []byte) ([]byte, uint64) {
	head, n := r.pub.Load(), uint64(len(r.data))
	for pos := r.tail.Load(); pos < head; {
		payload, size, ok := ringEntryAt(r.data, &r.epochLE, pos)
		if !ok {
			pos += n - pos%n // skipped to the next lap
			continue
		}
		dst = append(dst, payload...)
		pos += size
	}
	return dst, head
}

// free moves the tail to head: the entries before it are in a segment.
func (r *ring) free(head uint64) {
	atomic.StoreUint64(r.word(ringOffTail), head)
	r.tail.Store(head)
}

func (r *ring) close() error {
	err := unmap(r.mm)
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	return err
}
