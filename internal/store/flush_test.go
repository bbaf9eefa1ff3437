package store

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestFlushEvery checks the interval setting on the fake clock: every byte
// written is flushed (Stats.Flushed, the flusher's published position)
// at most FlushEvery after it was written, never by the writer itself;
// segments retired by rotations are flushed too; Flush flushes at once;
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

		// Flush does not wait for the interval.
		mustWait(t, l.Apply(Put("now", []byte("now"))))
		want["now"] = "now"
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		if st := l.Stats(); st.Flushed != st.Bytes {
			t.Fatalf("after Flush: flushed %d of %d bytes", st.Flushed, st.Bytes)
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
// when Wait returns; with NoSync alone none ever is, and Flush does
// nothing.
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
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			st := l.Stats()
			if got := st.Flushed == st.Bytes && st.Bytes > 0; got != tc.flushed {
				t.Fatalf("flushed %d of %d bytes, want all flushed: %v", st.Flushed, st.Bytes, tc.flushed)
			}
		})
	}
}
