package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// TestFlushEvery checks the interval setting on the fake clock: every byte
// written is flushed (Stats.Flushed, the flusher's published position)
// at most FlushEvery after it was written, never by the writer itself;
// segments retired by rotations are flushed too; a flush asked for runs at once;
// Close flushes the rest, and everything replays.
func TestFlushEvery(t *testing.T) {
	const every = 20 * time.Millisecond
	dir := t.TempDir()
	want := map[string]string{}
	synctest.Test(t, func(t *testing.T) {
		l, _ := mustOpen(t, dir, Options{NoSync: true, FlushEvery: every})
		type mark struct {
			at    time.Time
			bytes uint64
		}
		var written []mark
		// 4 KiB values fill the first 1 MiB segment after about
		// 250 batches: the 400 below rotate at least once.
		for i := range 400 {
			k := fmt.Sprintf("k%03d", i)
			v := k + strings.Repeat(".", 4096)
			mustWait(t, l.Apply(Put(k, []byte(v))))
			want[k] = v
			st := l.Stats()
			if i == 0 && st.Flushed >= st.Bytes {
				t.Fatalf("the write flushed its own batch (flushed %d of %d bytes): the writer waited for the disk", st.Flushed, st.Bytes)
			}
			written = append(written, mark{time.Now(), st.Bytes})
			// Writes at uneven moments, a few per interval.
			time.Sleep(time.Duration(1+i%7) * time.Millisecond)
			synctest.Wait()
			flushed := l.Stats().Flushed
			for _, m := range written {
				if time.Since(m.at) >= every && flushed < m.bytes {
					t.Fatalf("after batch %d: %d bytes written %v ago are not flushed (flushed %d)",
						i, m.bytes, time.Since(m.at), flushed)
				}
			}
		}
		if st := l.Stats(); st.Segment < 2 {
			t.Fatalf("no rotation happened (segment %d): the test does not cover retired segments", st.Segment)
		}
		time.Sleep(every)
		synctest.Wait()
		if st := l.Stats(); st.Flushed != st.Bytes {
			t.Fatalf("idle for the interval: flushed %d of %d bytes", st.Flushed, st.Bytes)
		}

		// A flush asked for (flush) does not wait for the interval.
		mustWait(t, l.Apply(Put("now", []byte("now"))))
		want["now"] = "now"
		if err := l.flush(); err != nil {
			t.Fatal(err)
		}
		if st := l.Stats(); st.Flushed != st.Bytes {
			t.Fatalf("after flush: flushed %d of %d bytes", st.Flushed, st.Bytes)
		}

		// Close flushes what the interval has not reached yet.
		mustWait(t, l.Apply(Put("last", []byte("last"))))
		want["last"] = "last"
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if st := l.Stats(); st.Flushed != st.Bytes {
			t.Fatalf("after Close: flushed %d of %d bytes", st.Flushed, st.Bytes)
		}
	})
	l, live := mustOpen(t, dir, Options{NoSync: true, FlushEvery: every})
	defer l.Close()
	equalMaps(t, live, want)
}

// TestFlushPositionPerSetting: with fsync every written byte is flushed
// when Wait returns; with NoSync alone none ever is, and a flush only
// drains the ring.
func TestFlushPositionPerSetting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		flushed bool
	}{
		{"yes", Options{}, true},
		{"no", Options{NoSync: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := mustOpen(t, t.TempDir(), tc.opts)
			defer l.Close()
			mustWait(t, l.Apply(Put("a", []byte("b"))))
			if err := l.flush(); err != nil {
				t.Fatal(err)
			}
			st := l.Stats()
			if got := st.Flushed == st.Bytes && st.Bytes > 0; got != tc.flushed {
				t.Fatalf("flushed %d of %d bytes, want all flushed: %v", st.Flushed, st.Bytes, tc.flushed)
			}
		})
	}
}

// TestAwaitFlush: waiters arriving together share the flusher's next
// round (one fdatasync, not one each), which comes within the interval
// and covers every batch written before them; nothing is flushed early
// for them. Without the interval flush it returns at once, and after
// Close it says so.
func TestAwaitFlush(t *testing.T) {
	const every = 20 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		l, _ := mustOpen(t, t.TempDir(), Options{NoSync: true, FlushEvery: every})
		time.Sleep(2 * every) // Open's own writes flushed: an idle flusher
		synctest.Wait()
		before := l.Stats().Flushes
		start := time.Now()
		const waiters = 8
		var wg sync.WaitGroup
		returned := make([]time.Duration, waiters)
		for i := range waiters {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * time.Millisecond) // arriving over 7 ms
				mustWait(t, l.Apply(Put(fmt.Sprint("debit", i), []byte("attempted"))))
				written := l.Stats().Bytes
				if err := l.AwaitFlush(); err != nil {
					t.Error(err)
				}
				returned[i] = time.Since(start)
				if st := l.Stats(); st.Flushed < written {
					t.Errorf("waiter %d: AwaitFlush returned with %d bytes flushed, its batch ends at %d", i, st.Flushed, written)
				}
			})
		}
		wg.Wait()
		for i, d := range returned {
			if d != every {
				t.Errorf("waiter %d returned after %v, want the flusher's round at %v (the first write plus the interval)", i, d, every)
			}
		}
		if n := l.Stats().Flushes - before; n != 1 {
			t.Errorf("%d flushes for %d waiters arriving within one interval, want 1", n, waiters)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.AwaitFlush(); !errors.Is(err, ErrClosed) {
			t.Errorf("AwaitFlush after Close: %v, want ErrClosed", err)
		}
	})
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"yes", Options{}},
		{"no", Options{NoSync: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l, _ := mustOpen(t, t.TempDir(), tc.opts)
				defer l.Close()
				mustWait(t, l.Apply(Put("a", []byte("b"))))
				start := time.Now()
				if err := l.AwaitFlush(); err != nil || time.Since(start) != 0 {
					t.Fatalf("AwaitFlush: %v after %v, want nil at once (nothing for a flusher to do)", err, time.Since(start))
				}
			})
		})
	}
}

// TestFlusherStaysAwakeUnderLoad: under a steady stream of writes the
// flusher flushes once per interval and no write has to wake it; an
// interval with nothing to flush puts it to sleep, and the next write
// wakes it and is flushed an interval later.
func TestFlusherStaysAwakeUnderLoad(t *testing.T) {
	const every = 20 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		l, _ := mustOpen(t, t.TempDir(), Options{NoSync: true, FlushEvery: every})
		defer l.Close()
		time.Sleep(3 * every) // Open's own writes flushed: an idle flusher
		synctest.Wait()
		if l.flusherAwake.Load() {
			t.Fatal("the flusher stays awake with nothing to flush")
		}
		base := l.Stats().Flushes
		const intervals = 10
		for i := range intervals * int(every/time.Millisecond) {
			if i > 0 && !l.flusherAwake.Load() {
				t.Fatalf("write %d had to wake the flusher", i)
			}
			mustWait(t, l.Apply(Put(fmt.Sprint("k", i), []byte("v"))))
			time.Sleep(time.Millisecond)
			synctest.Wait()
		}
		if n := l.Stats().Flushes - base; n != intervals {
			t.Fatalf("%d flushes for %d intervals of writes, want one per interval", n, intervals)
		}
		time.Sleep(2 * every)
		synctest.Wait()
		if l.flusherAwake.Load() {
			t.Fatal("the flusher stays awake with nothing to flush")
		}
		mustWait(t, l.Apply(Put("after", []byte("idle"))))
		written := l.Stats().Bytes
		time.Sleep(every)
		synctest.Wait()
		if st := l.Stats(); st.Flushed < written {
			t.Fatalf("a write into an idle log: %d of %d bytes flushed an interval later", st.Flushed, written)
		}
	})
}

// TestFailedFlushNotReportedFlushed: after a failed fdatasync (a writeback
// error, played by a segment that is /dev/null: pwrite works, fdatasync
// fails) what the kernel dropped is in no durable file, and Linux tells a
// later fdatasync of the file nothing of it. So the failure starts a
// fault episode (the journal's repair then writes a snapshot of
// everything), and AwaitFlush fails until that snapshot: the debit spool
// must not send a debit whose records may be lost.
func TestFailedFlushNotReportedFlushed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, _ := mustOpen(t, t.TempDir(), Options{NoSync: true, FlushEvery: 20 * time.Millisecond})
		defer l.Close()
		null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		l.wmu.Lock()
		l.seg.Close()
		l.seg = null
		l.wmu.Unlock()
		mustWait(t, l.Apply(Put("A", []byte("lost"))))
		if l.AwaitFlush() == nil {
			t.Fatal("AwaitFlush: want the fdatasync error")
		}
		if since, _, _ := l.Fault(); since.IsZero() {
			t.Error("a failed fdatasync started no fault episode: nothing writes A again")
		}
		mustWait(t, l.Apply(Put("B", nil))) // a new segment; /dev/null retired
		l.AwaitFlush()
		if err := l.AwaitFlush(); err == nil {
			t.Fatalf("AwaitFlush nil, Flushed %d of %d bytes: A is in no durable file", l.Stats().Flushed, l.Stats().Bytes)
		}
		flushed := l.Stats().Flushed
		if err := l.Compact(func(put func(string, []byte)) { put("A", []byte("lost")); put("B", nil) }); err != nil {
			t.Fatal(err)
		}
		if err := l.AwaitFlush(); err != nil {
			t.Errorf("after the snapshot: %v", err)
		}
		if st := l.Stats(); st.Flushed <= flushed {
			t.Errorf("after the snapshot the flushed position stays at %d of %d", st.Flushed, st.Bytes)
		}
	})
}

// TestFailingDrainRetriedInPlace: a drain that keeps failing (a full disk,
// played by a file size limit the new segment's magic fits under and the
// drain does not) is retried once per interval, in the same segment file:
// no flusher spinning at one instant, no new segment file and descriptor
// per try, and Close returns.
func TestFailingDrainRetriedInPlace(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	restore := func() { syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old) }
	defer restore()
	// A flusher that spins never lets the fake clock move: fail loudly
	// in real time rather than hang until the test binary's timeout.
	watchdog := time.AfterFunc(30*time.Second, func() {
		panic("TestFailingDrainRetriedInPlace: the flusher spins; the fake clock stands still")
	})
	defer watchdog.Stop()
	dir := t.TempDir()
	segments := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, segPrefix+"*"))
		return len(m)
	}
	synctest.Test(t, func(t *testing.T) {
		const every = 20 * time.Millisecond
		l, _ := mustOpen(t, dir, Options{NoSync: true, FlushEvery: every})
		time.Sleep(2 * every)
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 64 << 10, Max: old.Max}); err != nil {
			t.Fatal(err)
		}
		mustWait(t, l.Apply(Put("big", make([]byte, 128<<10))))
		time.Sleep(3 * every)
		errs, files := l.Stats().Errors, segments()
		time.Sleep(10 * every)
		if n := l.Stats().Errors - errs; n < 5 || n > 11 {
			t.Errorf("%d failed drains in 10 intervals, want one per interval", n)
		}
		if n := segments() - files; n != 0 {
			t.Errorf("%d segment files more after 10 failed drains, want the same file retried", n)
		}
		errs = l.Stats().Errors
		closed := make(chan error, 1)
		go func() { closed <- l.Close() }()
		for i := 0; i < 200000 && len(closed) == 0; i++ {
			runtime.Gosched() // the fake clock stands still meanwhile
		}
		spun, stuck := l.Stats().Errors-errs, len(closed) == 0
		restore()
		<-closed
		if spun > 2 || stuck {
			t.Fatalf("%d failed drains at one instant; Close stuck: %v", spun, stuck)
		}
	})
}

// TestEveryBatchFlushedWithinInterval: writers Apply or Stage (with or
// without Wait) at random moments, with idle gaps longer than the
// interval; at every millisecond everything written or queued an
// interval ago is flushed, whether the flusher stayed awake or slept.
func TestEveryBatchFlushedWithinInterval(t *testing.T) {
	const every = 10 * time.Millisecond
	for seed := range uint64(8) {
		synctest.Test(t, func(t *testing.T) {
			l, _ := mustOpen(t, t.TempDir(), Options{NoSync: true, FlushEvery: every, RingSize: 64 << 10})
			defer l.Close()
			type mark struct {
				at    time.Time
				total uint64
			}
			var marks []mark
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(seed, uint64(w)))
					for i := 0; ; i++ {
						gap := time.Duration(r.IntN(4)) * time.Millisecond
						if r.IntN(8) == 0 {
							gap = every + time.Duration(r.IntN(30))*time.Millisecond
						}
						select {
						case <-stop:
							return
						case <-time.After(gap):
						}
						op := Put(fmt.Sprint("k", w, i%50), make([]byte, r.IntN(300)))
						switch r.IntN(4) {
						case 0:
							l.Apply(op)
						case 1:
							l.Stage(op)
						case 2:
							mustWait(t, l.Apply(op))
						case 3:
							mustWait(t, l.Stage(op))
						}
					}
				})
			}
			for range 1500 {
				time.Sleep(time.Millisecond)
				synctest.Wait()
				st := l.Stats()
				l.mu.Lock()
				queued := 0
				for _, g := range l.queue {
					queued += len(g.buf)
				}
				l.mu.Unlock()
				now := time.Now()
				marks = append(marks, mark{now, st.Bytes + uint64(queued)})
				for len(marks) > 0 && now.Sub(marks[0].at) >= every {
					if st.Flushed < marks[0].total {
						t.Fatalf("seed %d at %v: %d bytes written or queued at %v not flushed (flushed %d)", seed, now, marks[0].total, marks[0].at, st.Flushed)
					}
					marks = marks[1:]
				}
			}
			close(stop)
			wg.Wait()
		})
	}
}
