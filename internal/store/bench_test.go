package store

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkApplyParallel: 32 writers, each Apply+Wait of one ~200-byte put;
// ns/op is per commit, so 1e9/ns-op is commits per second; max-ms is the
// longest one commit waited, p99-us the 99th percentile. The sub-benchmarks
// are named after the daemon's sync settings.
func BenchmarkApplyParallel(b *testing.B) {
	for _, tc := range []struct {
		sync string
		opts Options
	}{{"yes", Options{}}, {"no", Options{NoSync: true}}, {"interval", Options{NoSync: true, FlushEvery: 20 * time.Millisecond}}} {
		opts := tc.opts
		b.Run("sync="+tc.sync, func(b *testing.B) {
			l, _ := mustOpen(b, b.TempDir(), opts)
			defer l.Close()
			val := make([]byte, 200)
			const writers = 32
			var wg sync.WaitGroup
			var mu sync.Mutex
			var slowest time.Duration // the longest one commit waited
			var waits []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for w := range writers {
				n := b.N / writers
				if w < b.N%writers {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					key := fmt.Sprintf("call-%d@host", w)
					var worst time.Duration
					mine := make([]time.Duration, 0, n)
					for range n {
						t0 := time.Now()
						if err := l.Apply(Put(key, val)).Wait(); err != nil {
							b.Error(err)
							return
						}
						d := time.Since(t0)
						worst = max(worst, d)
						mine = append(mine, d)
					}
					mu.Lock()
					slowest = max(slowest, worst)
					waits = append(waits, mine...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			b.StopTimer()
			st := l.Stats()
			if st.Groups > 0 {
				b.ReportMetric(float64(st.Batches)/float64(st.Groups), "commits/group")
			}
			b.ReportMetric(float64(slowest.Microseconds())/1000, "max-ms")
			if len(waits) > 0 {
				slices.Sort(waits)
				b.ReportMetric(float64(waits[len(waits)*99/100].Nanoseconds())/1000, "p99-us")
			}
		})
	}
}

// BenchmarkOpen100k restores 100,000 records of ~200 bytes, from a snapshot
// (the clean-stop case) and from the WAL alone (the crash case).
func BenchmarkOpen100k(b *testing.B) {
	const n = 100_000
	val := make([]byte, 200)
	for _, snap := range []bool{true, false} {
		b.Run(fmt.Sprintf("snapshot=%v", snap), func(b *testing.B) {
			dir := b.TempDir()
			l, _ := mustOpen(b, dir, Options{NoSync: true})
			keys := make([]string, n)
			var c *Commit
			for i := range n {
				keys[i] = fmt.Sprintf("%016x@proxy.example.com", i)
				c = l.Apply(Put(keys[i], val))
			}
			mustWait(b, c)
			if snap {
				if err := l.Compact(func(put func(string, []byte)) {
					for _, k := range keys {
						put(k, val)
					}
				}); err != nil {
					b.Fatal(err)
				}
			}
			l.Close()
			b.ResetTimer()
			for b.Loop() {
				l, live, err := Open(dir, Options{}, quiet())
				if err != nil {
					b.Fatal(err)
				}
				if len(live) != n {
					b.Fatalf("restored %d", len(live))
				}
				l.Close()
			}
		})
	}
}
