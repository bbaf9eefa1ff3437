package session_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
)

// countingRater gives every call an hour and counts the re-asks.
type countingRater struct{ probes atomic.Int64 }

func (*countingRater) Pick(string) string     { return engineName }
func (*countingRater) Acquire(string, string) {}
func (*countingRater) Release(string)         {}
func (r *countingRater) MaxSessionTime(_ context.Context, _ string, q rating.Request) (rating.MaxTime, error) {
	if strings.Contains(q.CallID, "~recheck") {
		r.probes.Add(1)
	}
	return rating.MaxTime{Kind: rating.Limited, Seconds: 3600, Prepaid: true}, nil
}

// releases answers each probe's release as the engine would for a party
// with an hour left, and counts the releases: the journal's OnDebit.
type releases struct {
	m     *session.Manager
	count atomic.Int64
	wg    sync.WaitGroup
}

func (r *releases) owed(o session.Owed) {
	if o.Debit.Duration != 0 {
		return
	}
	r.count.Add(1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.m.Debited(o, rating.DebitReply{OK: true, MaxSessionTime: 3600})
	}()
}

// TestRecheckEngineLoad measures, on the fake clock, the requests the
// re-asks send to the engine for 1,000 and 10,000 prepaid calls in
// progress, each of its own account (no sharing of probes), with the
// default interval: a probe and its release per call per step.
// BENCHMARKS.md records its output (go test -run TestRecheckEngineLoad -v).
func TestRecheckEngineLoad(t *testing.T) {
	const interval = 30 * time.Second
	for _, n := range []int{1000, 10000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			if n > 1000 && (testing.Short() || raceEnabled) {
				t.Skip("a measurement: run without -race and -short")
			}
			wall := time.Now()
			defer func() { t.Logf("wall time, calls set up and 5 minutes of re-asks simulated: %v", time.Since(wall)) }()
			synctest.Test(t, func(t *testing.T) {
				r := &countingRater{}
				rel := &releases{}
				j := sessiontest.NewJournal()
				j.OnDebit = rel.owed
				m := session.NewManager(session.Limits{Limit: session.NoLimit, PrepaidLimit: session.NoLimit,
					SetupTime: 90 * time.Second, StaleTimeout: 24 * time.Hour, ProxyTimeout: 500 * time.Millisecond,
					RecheckInterval: interval}, r, &dialogtest.Ender[dialog.Target]{}, j, slog.New(slog.DiscardHandler))
				rel.m = m
				// Calls answered over one interval, as traffic does.
				for i := range n {
					id := fmt.Sprintf("load-%d", i)
					req := &session.InitRequest{CallID: id, RURI: "sip:0031650222333@example.com", Diverter: "None",
						SourceIP: "10.0.0.1", From: fmt.Sprintf("<sip:user%d@example.com>", i), Prepaid: "true"}
					if m.Init(req, time.Now()) != session.ReplyLimited || m.Start(id, "1:2", time.Now()) != session.ReplyOk {
						t.Fatal("call refused")
					}
					time.Sleep(interval / time.Duration(n))
				}
				const window = 5 * time.Minute
				p0, r0 := r.probes.Load(), rel.count.Load()
				time.Sleep(window)
				synctest.Wait()
				probes, releases := r.probes.Load()-p0, rel.count.Load()-r0
				perSec := float64(probes+releases) / window.Seconds()
				// Steps are the interval less up to a tenth (jitter).
				lo, hi := 2*float64(n)/interval.Seconds(), 2*float64(n)/(0.9*interval.Seconds())
				t.Logf("%d prepaid calls in progress, recheck_interval %v: %d probes + %d releases in %v: %.1f engine requests/s (expected %.1f to %.1f)",
					n, interval, probes, releases, window, perSec, lo, hi)
				if perSec < lo*0.98 || perSec > hi*1.02 {
					t.Errorf("%.1f engine requests/s, want %.1f to %.1f", perSec, lo, hi)
				}
				m.Shutdown()
				rel.wg.Wait()
			})
		})
	}
}
