package session_test

import (
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
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

// FAILING ON PURPOSE (spec review, not fixed): behaviour.md, "Deciding at
// init" 1: with the same call_token (a serial fork) the call is set up
// again. A ringing call an operator terminated on Kamailio leaves the
// table and is kept aside to be ended when answered (ends.go), and admit
// sets a fork of it up as a new call: its `start` finds the new session,
// so the operator's order is lost and the call runs on its own limit (the
// operator was told it would be ended the moment it is answered). What the
// fork should get is not sure: a setup-time release must let a fork to
// voicemail through, an operator's order should not; so this is reported,
// not fixed. (Another token is answered Duplicated callid:
// TestInitOfACallIDKeptAsideWithAnotherToken.)
func TestInitAgainAfterTerminateWhileRinging(t *testing.T) {
	tests := []struct {
		name  string
		token string
		exact bool // the init must be answered want; else Limited must be ended at answer
		want  Reply
	}{
		{"the same call forked (same token)", "", false, ReplyLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, Limits{Limit: 3600, PrepaidLimit: NoLimit}, nil) // Kamailio: ends no ringing call
				if got := f.m.Init(initReq("c1", "alice", "false"), time.Now()); got != ReplyLimited {
					t.Fatalf("init: %s", got)
				}
				if res := f.m.Terminate("c1"); res != TerminateAtAnswer {
					t.Fatalf("terminate: %v", res)
				}
				again := initReq("c1", "alice", "false")
				again.CallToken = tt.token
				got := f.m.Init(again, time.Now())
				if tt.exact {
					if got != tt.want {
						t.Fatalf("init again: %s, want %s", got, tt.want)
					}
					return
				}
				if got != ReplyLimited {
					return // refused: the operator's order holds
				}
				f.m.Start("c1", "1:2", time.Now())
				select {
				case <-f.ch:
				case <-time.After(2 * time.Second):
					t.Fatal("the call an operator terminated while ringing was answered and not ended")
				}
			})
		})
	}
}
