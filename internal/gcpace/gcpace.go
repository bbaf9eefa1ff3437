// Package gcpace keeps the garbage collector's headroom in proportion to a
// big session table.
//
// Go collects when the heap has grown by GOGC percent (100) of what the
// last collection found live: harmless for a small table, but a million
// sessions are about 650 MB live, which would let the daemon's memory grow
// to 1.3 GB between collections. Above Floor of live heap, the pacer lowers
// the percentage so that the headroom is Share percent of the live heap,
// never less than Floor: the heap then stays within about 1.25 times the
// table, for some more collections under load. An operator's own GOGC or
// GOMEMLIMIT is left alone.
package gcpace

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Policy is the headroom the pacer keeps.
type Policy struct {
	Floor uint64 // bytes: below this live heap, the runtime's default (100%)
	Share int    // percent of the live heap kept as headroom above Floor
}

// Default is the daemon's policy: 128 MiB, 25%.
var Default = Policy{Floor: 128 << 20, Share: 25}

// Percent is the GOGC value that gives live bytes of live heap the
// policy's headroom.
func (p Policy) Percent(live uint64) int {
	if live <= p.Floor {
		return 100
	}
	headroom := max(p.Floor, live/100*uint64(p.Share))
	return max(int(headroom*100/live), p.Share)
}

// OperatorTuned says whether the environment sets the collector's pace
// (GOGC or GOMEMLIMIT): the pacer then stays out of the way.
func OperatorTuned() bool {
	return os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != ""
}

// Runtime reads the collector's cycle count and the live heap it found,
// and sets the percentage: the Go runtime's own knobs.
type Runtime struct{}

const (
	cyclesMetric = "/gc/cycles/total:gc-cycles"
	liveMetric   = "/gc/heap/live:bytes"
)

// Read returns the completed collections and the live heap of the last.
func (Runtime) Read() (cycles, live uint64) {
	s := []metrics.Sample{{Name: cyclesMetric}, {Name: liveMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0, 0
	}
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// SetPercent sets GOGC.
func (Runtime) SetPercent(p int) { debug.SetGCPercent(p) }

// Collector is what Run reads and sets (Runtime, or a fake in tests).
type Collector interface {
	Read() (cycles, live uint64)
	SetPercent(int)
}

// Run looks after each collection, every interval, for the percentage
// the policy gives, until ctx ends; it puts back 100 then.
func Run(ctx context.Context, c Collector, p Policy, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var seen uint64
	current := 100
	defer func() {
		if current != 100 {
			c.SetPercent(100)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cycles, live := c.Read()
		if cycles == seen {
			continue
		}
		seen = cycles
		if want := p.Percent(live); want != current {
			c.SetPercent(want)
			current = want
		}
	}
}
