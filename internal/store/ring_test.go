package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/store/storetest"
)

// noDrain is an interval the tests never reach: what is acknowledged
// stays in the ring unless the ring itself has to make room.
const noDrain = time.Hour

// killedCopy is the state a kill -9 of l's process would leave: its files
// as the page cache has them now, with l still open.
func killedCopy(t *testing.T, dir string) string {
	t.Helper()
	return storetest.CopyDir(t, dir)
}

// editRing changes the ring file in dir with edit.
func editRing(t *testing.T, dir string, edit func(file []byte)) {
	t.Helper()
	name := filepath.Join(dir, ringName)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	edit(b)
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRingReplayAfterKill: batches acknowledged in the ring and never
// drained, or drained into a segment, or written straight to the segment
// because the ring was full or too small for them, are all there after a
// kill -9, in order (the last value of each key wins), in every setting
// that uses the ring; and the segments then hold them, so the ring can
// start afresh.
func TestRingReplayAfterKill(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  Options
		n     int // batches
		size  int // bytes of each value
		flush bool
	}{
		{"in the ring only", Options{NoSync: true, FlushEvery: noDrain}, 20, 100, false},
		{"ring wraps, full ring drained by the writer", Options{NoSync: true, FlushEvery: noDrain, RingSize: 16 << 10}, 300, 700, false},
		{"bigger than the ring", Options{NoSync: true, FlushEvery: noDrain, RingSize: 4 << 10}, 5, 8 << 10, false},
		{"drained and flushed, then more", Options{NoSync: true, FlushEvery: noDrain, RingSize: 16 << 10}, 100, 300, true},
		{"sync = no", Options{NoSync: true, RingSize: 16 << 10}, 300, 700, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := mustOpen(t, dir, tc.opts)
			defer l.Close()
			want := map[string]string{}
			for i := range tc.n {
				k := fmt.Sprintf("k%d", i%37) // keys written again: order matters
				v := fmt.Sprintf("%d:%s", i, strings.Repeat("v", tc.size))
				var c *Commit
				if i%3 == 0 {
					c = l.Apply(Put(k, []byte(v)), Delete("gone"))
				} else {
					c = l.Stage(Put(k, []byte(v)))
				}
				mustWait(t, c)
				want[k] = v
				if tc.flush && i == tc.n/2 {
					if err := l.flush(); err != nil {
						t.Fatal(err)
					}
				}
			}
			copied := killedCopy(t, dir)
			l2, live := mustOpen(t, copied, Options{NoSync: true})
			equalMaps(t, live, want)
			l2.Close()
			// Replayed once, the ring was reset: the segments hold it all.
			l3, live := mustOpen(t, copied, Options{})
			equalMaps(t, live, want)
			l3.Close()
			if _, err := os.Stat(filepath.Join(copied, ringName)); !os.IsNotExist(err) {
				t.Fatalf("with fsync the ring file stays: %v", err)
			}
		})
	}
}

// TestRingSizeChanged: a ring opened with another size than the file had
// (a changed RingSize, or DefaultRingSize in a new version) is replayed
// all the same after a kill: the reader takes the size from the file.
func TestRingSizeChanged(t *testing.T) {
	for _, tc := range []struct{ before, after int }{{64 << 10, 16 << 10}, {16 << 10, 64 << 10}} {
		dir := t.TempDir()
		l, _ := mustOpen(t, dir, Options{NoSync: true, RingSize: tc.before})
		l.Close()
		l, _ = mustOpen(t, dir, Options{NoSync: true, FlushEvery: noDrain, RingSize: tc.after})
		defer l.Close()
		want := map[string]string{}
		for i := range 40 { // 40 KiB: the smaller ring wraps
			k, v := fmt.Sprintf("k%d", i), strings.Repeat("v", 1<<10)
			mustWait(t, l.Stage(Put(k, []byte(v))))
			want[k] = v
		}
		l2, live := mustOpen(t, killedCopy(t, dir), Options{NoSync: true})
		equalMaps(t, live, want)
		l2.Close()
	}
}

// TestRingOfAnotherBootIgnored: after a kernel crash or power cut the
// ring's pages on disk are any mix of old and new, so a ring written
// under another boot is never replayed; one of this boot is.
func TestRingOfAnotherBootIgnored(t *testing.T) {
	for _, tc := range []struct {
		name   string
		boot   func([]byte) // edits the ring's boot ID in place
		replay bool
	}{
		{"this boot", func([]byte) {}, true},
		{"another boot", func(b []byte) { b[0] ^= 1 }, false},
		{"no boot ID", func(b []byte) { clear(b) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := mustOpen(t, dir, Options{NoSync: true, FlushEvery: noDrain})
			defer l.Close()
			mustWait(t, l.Stage(Put("a", []byte("1"))))
			copied := killedCopy(t, dir)
			editRing(t, copied, func(b []byte) { tc.boot(b[ringOffBoot:ringOffEpoch]) })
			l2, live := mustOpen(t, copied, Options{NoSync: true})
			defer l2.Close()
			if got := live["a"] != nil; got != tc.replay {
				t.Fatalf("ring replayed: %v, want %v", got, tc.replay)
			}
		})
	}
}

// TestRingDamageEndsReplay: the ring replays the run of entries that check
// out, from its tail, and stops at the first one that does not: a torn
// entry (the copy a kill interrupted) or the stale bytes of an earlier lap.
func TestRingDamageEndsReplay(t *testing.T) {
	dir := t.TempDir()
	l, _ := mustOpen(t, dir, Options{NoSync: true, FlushEvery: noDrain})
	defer l.Close()
	for _, k := range []string{"a", "b", "c"} {
		mustWait(t, l.Stage(Put(k, []byte(k))))
	}
	for _, tc := range []struct {
		name string
		at   int // byte of the data to flip: entry a is 16+13 bytes, rounded to 32
		want map[string]string
	}{
		{"first entry", 20, map[string]string{}},
		{"second entry's payload", 32 + 18, map[string]string{"a": "a"}},
		{"second entry's position", 32 + 8, map[string]string{"a": "a"}},
		{"third entry", 64 + 16, map[string]string{"a": "a", "b": "b"}},
		{"nothing", -1, map[string]string{"a": "a", "b": "b", "c": "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			copied := killedCopy(t, dir)
			if tc.at >= 0 {
				editRing(t, copied, func(b []byte) { b[ringHeaderSize+tc.at] ^= 0x40 })
			}
			l2, live := mustOpen(t, copied, Options{NoSync: true})
			defer l2.Close()
			equalMaps(t, live, tc.want)
		})
	}
}

// TestRingKeepsTheProxyPathOffTheDisk: with the ring, a waited-for batch
// is acknowledged without reaching the segment; the flusher moves it
// there (Stats.Flushed), and Close leaves the ring empty.
func TestRingKeepsTheProxyPathOffTheDisk(t *testing.T) {
	dir := t.TempDir()
	l, _ := mustOpen(t, dir, Options{NoSync: true, FlushEvery: noDrain})
	mustWait(t, l.Stage(Put("a", []byte("1"))))
	l.wmu.Lock()
	onSegment := l.onSegment
	l.wmu.Unlock()
	if onSegment != 0 {
		t.Fatalf("the batch went to the segment (%d bytes) before the reply", onSegment)
	}
	if err := l.flush(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Flushed != st.Bytes || st.Bytes == 0 {
		t.Fatalf("after flush: flushed %d of %d bytes", st.Flushed, st.Bytes)
	}
	mustWait(t, l.Stage(Put("b", []byte("2"))))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if fromRing, err := readRing(dir); err != nil || len(fromRing) != 0 {
		t.Fatalf("after Close the ring still holds %d bytes (%v)", len(fromRing), err)
	}
	l, live := mustOpen(t, dir, Options{NoSync: true})
	defer l.Close()
	equalMaps(t, live, map[string]string{"a": "1", "b": "2"})
}

// FuzzParseRing: any ring data, from any tail, parses without panicking,
// to no more than the data holds.
func FuzzParseRing(f *testing.F) {
	boot := []byte("0b5e6d1c-2f3a-4b5c-8d9e-0f1a2b3c4d5e")
	header := func(epoch, tail uint64) []byte {
		h := make([]byte, ringHeaderSize)
		copy(h, ringMagic)
		copy(h[ringOffBoot:], boot)
		binary.NativeEndian.PutUint64(h[ringOffEpoch:], epoch)
		binary.NativeEndian.PutUint64(h[ringOffTail:], tail)
		return h
	}
	r := &ring{mm: header(7, 0), epoch: 7}
	r.mm = append(r.mm, make([]byte, 256)...)
	r.data = r.mm[ringHeaderSize:]
	binary.LittleEndian.PutUint64(r.epochLE[:], r.epoch)
	for _, p := range []string{"first", "second entry", "third"} {
		b, s := beginFrame(nil)
		b = endFrame(appendOp(b, Put(p, []byte(p))), s)
		r.append(b)
	}
	f.Add(bytes.Clone(r.data), uint64(7), uint64(0))
	f.Add(bytes.Clone(r.data), uint64(7), uint64(40))
	f.Add(bytes.Clone(r.data[:20]), uint64(7), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, epoch, tail uint64) {
		out := parseRing(append(header(epoch, tail), data...), boot)
		if len(out) > len(data) {
			t.Fatalf("gave %d bytes from %d of data", len(out), len(data))
		}
	})
}

// TestWaitWrittenBeforeTheFsync: with fsync, WaitWritten returns once the
// batch is in the page cache while its fsync is still to come (held here),
// and a kill -9 then (a copy of the directory) keeps the batch. The journal
// waits so for an asked mark before the engine is asked.
func TestWaitWrittenBeforeTheFsync(t *testing.T) {
	dir := t.TempDir()
	l, _ := mustOpen(t, dir, Options{})
	defer l.Close()
	release := make(chan struct{})
	// Released before Close (deferred later, run first): after a failure
	// below, Close would wait on the held fsync until the test timeout.
	var released sync.Once
	free := func() { released.Do(func() { close(release) }) }
	defer free()
	l.beforeSync = func() { <-release } // set before the Apply that wakes the writer
	c := l.Apply(Put("k", []byte("v")))
	if err := c.WaitWritten(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
		t.Fatal("the fsync is held, yet the commit is done")
	default:
	}
	l2, live := mustOpen(t, killedCopy(t, dir), Options{})
	equalMaps(t, live, map[string]string{"k": "v"})
	l2.Close()
	free()
	mustWait(t, c)
}

// TestDrainSkipsStaleEntryOfEarlierRun: where the appender skips to the
// next lap it leaves the bytes as they were; an entry an earlier run
// left there, with the same pos number, must not be copied into this
// run's segment, or replay would bring back its old value (a deleted
// debit or session among them).
func TestDrainSkipsStaleEntryOfEarlierRun(t *testing.T) {
	const n, x = 4096, 2560 // ring data size; where run 1's k=old entry sits
	opts := Options{NoSync: true, FlushEvery: time.Hour, RingSize: n}
	dir := t.TempDir()
	entry := func(key string, size uint64) Op { // a Put whose ring entry is size bytes
		for v := 0; ; v++ {
			op := Put(key, make([]byte, v))
			b, s := beginFrame(nil)
			if ringEntrySize(len(endFrame(appendOp(b, op), s))) == size {
				return op
			}
		}
	}
	l, _ := mustOpen(t, dir, opts) // run 1: a filler up to x, then k=old at x
	mustWait(t, l.Apply(entry("fill", x)))
	mustWait(t, l.Apply(Put("k", []byte("old"))))
	l.Close()
	l, _ = mustOpen(t, dir, opts) // run 2: k=new up to x, drained
	newK := entry("k", x)
	mustWait(t, l.Apply(newK))
	l.flush()
	mustWait(t, l.Apply(entry("big", 2000))) // too big for [x, n): next lap
	l.flush()
	l.Close()
	l, live := mustOpen(t, dir, opts)
	defer l.Close()
	if len(live["k"]) != len(newK.Value) {
		t.Fatalf("k=%q after restart, want run 2's %d-byte value", live["k"], len(newK.Value))
	}
}
