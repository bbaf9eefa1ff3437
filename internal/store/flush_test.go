package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
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
