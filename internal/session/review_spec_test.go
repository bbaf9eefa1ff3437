package session_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	. "github.com/callcontrol/callcontrol/internal/session"
)

// FAILING ON PURPOSE (spec review, not fixed): behaviour.md, "Logging":
// "Every decision and action goes to syslog ... so a call can be followed
// from its first line to its debit". At `start` the daemon starts the
// call's clock, and for a prepaid call decides its limit from the re-ask
// (State=Connected); that line, "call answered", is logged at DEBUG only
// (commit 1b14451, for the proxy path's cost; docs/operators.md says
// "With --debug, `call answered` lines ... are added"). With the default
// level, syslog shows neither when a call was answered nor the limit its
// clock started with (a prepaid re-ask that moves no call logs nothing at
// INFO). The fix is one word in Manager.Start (log.debug -> log.info, with
// the destination added) at the cost of one more INFO line per call; the
// lead decides between the spec and that cost, so the test stays failing
// until then.
func TestStartLoggedWithItsLimit(t *testing.T) {
	tests := []struct {
		name    string
		prepaid string
		answer  int // the engine's answer, at init and at start
	}{
		{"postpaid, global limit", "false", 0},
		{"prepaid, re-ask gives the same number", "true", 600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Limits{Limit: 3600, PrepaidLimit: NoLimit}, limited(tt.answer))
			if got := f.m.Init(initReq("c1", "alice", tt.prepaid), time.Now()); got != ReplyLimited {
				t.Fatalf("init: %s", got)
			}
			var buf syncBuffer
			f.m.SetLog(slog.New(slog.NewTextHandler(&buf, nil)))
			if got := f.m.Start("c1", "1:2", time.Now()); got != ReplyOk {
				t.Fatalf("start: %s", got)
			}
			if lines := decisionLines(&buf, "c1"); !hasAll(lines, "party", "to", "limit") {
				t.Fatalf("start left no line at INFO or above with callid, party, to and limit:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}
