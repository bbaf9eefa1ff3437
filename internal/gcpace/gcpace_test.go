package gcpace

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{live: 0, want: 100},
		{live: 40 * mib, want: 100},
		{live: 128 * mib, want: 100},
		{live: 256 * mib, want: 50},  // the floor, 128 MiB, is half of it
		{live: 512 * mib, want: 25},  // a quarter of it is the floor
		{live: 650 * mib, want: 25},  // a million sessions
		{live: 4096 * mib, want: 25}, // never under the share
	} {
		if got := Default.Percent(tc.live); got != tc.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", tc.live/mib, got, tc.want)
		}
	}
}

type fakeCollector struct {
	mu           sync.Mutex
	cycles, live uint64
	set          []int
}

func (f *fakeCollector) Read() (uint64, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cycles, f.live
}

func (f *fakeCollector) SetPercent(p int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set = append(f.set, p)
}

func (f *fakeCollector) collected(live uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cycles++
	f.live = live
}

func (f *fakeCollector) settings() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.set...)
}

// The pacer follows the live heap after each collection, sets the
// percentage only when it changes, and puts back the default when it stops.
func TestRunFollowsTheLiveHeap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCollector{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { Run(ctx, f, Default, time.Second); close(done) }()
		step := func(live uint64) {
			f.collected(live)
			time.Sleep(time.Second)
			synctest.Wait()
		}
		step(10 << 20)  // small: nothing set
		step(512 << 20) // big: 25
		step(600 << 20) // still 25: not set again
		step(200 << 20) // 64
		cancel()
		<-done
		want := []int{25, 64, 100}
		if got := f.settings(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("set %v, want %v", got, want)
		}
	})
}
