package session

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/proxy"
)

func restoreN(m *Manager, n int, prefix string) {
	now := time.Now()
	var saved []*Session
	for i := 0; i < n; i++ {
		saved = append(saved, &Session{CallID: fmt.Sprintf("%s%06d", prefix, i), Party: fmt.Sprintf("sip:u%d@example.com", i%7),
			RURI: "sip:d@example.com", Limit: NoLimit, Cap: NoLimit, Created: now, Answered: now})
	}
	m.Restore(saved)
}

// A listing lets go of the lock between chunks; sessions added and
// removed meanwhile must not make it miss or repeat one that stays.
func TestWalkSeesEverySessionThatStaysOnce(t *testing.T) {
	f := newFixture(t, Limits{Limit: 3600, PrepaidLimit: NoLimit}, nil)
	const stay, churn = 3000, 3000
	restoreN(f.m, churn, "churn-")
	restoreN(f.m, stay, "stay-")
	restoreN(f.m, churn, "late-")
	seen := map[string]int{}
	chunks, removed := 0, 0
	done := f.m.eachChunked(nil, func(s *Session) { seen[s.CallID]++ }, func() {
		chunks++
		// Between chunks: end a churn call (holes, then squeezing out
		// of holes, shifts the order) and set up new calls.
		for i := 0; i < 100 && removed < churn; i, removed = i+1, removed+1 {
			f.m.Stop(fmt.Sprintf("churn-%06d", removed))
			f.m.Stop(fmt.Sprintf("late-%06d", removed))
		}
		f.m.Init(initReq(fmt.Sprintf("new-%d", chunks), "x", "false"), time.Now())
	})
	if !done || chunks < (stay+churn)/listChunk {
		t.Fatalf("done %t after %d chunks", done, chunks)
	}
	for i := 0; i < stay; i++ {
		if n := seen[fmt.Sprintf("stay-%06d", i)]; n != 1 {
			t.Fatalf("stay-%06d seen %d times", i, n)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s seen %d times", id, n)
		}
	}
	if got := len(f.m.order.entries) - f.m.order.holes; got != len(f.m.calls) {
		t.Fatalf("order holds %d sessions, the table %d", got, len(f.m.calls))
	}
}

// A listing whose asker went away stops at the next chunk.
func TestListingStopsWhenTheAskerIsGone(t *testing.T) {
	f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, nil)
	restoreN(f.m, 10*listChunk, "c")
	asked := 0
	visited := 0
	if f.m.eachChunked(func() bool { asked++; return asked > 2 }, func(*Session) { visited++ }, nil) {
		t.Fatal("walk finished for an asker that went away")
	}
	if visited != 2*listChunk {
		t.Fatalf("visited %d sessions", visited)
	}
}

func TestDebugSessionsListsInOrderOfSetUp(t *testing.T) {
	f := newFixture(t, Limits{Limit: 3600, PrepaidLimit: NoLimit}, nil)
	restoreN(f.m, 2*listChunk+3, "c")
	f.m.Init(initReq("pending-1", "u1", "false"), time.Now())
	h := Handler{M: f.m}
	out := h.Handle(&proxy.Request{Command: "debug", Show: "sessions"}, time.Now())
	lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
	if len(lines) != 2*listChunk+4 || lines[0] != "Call id c000000 of u0@example.com to sip:d@example.com: in-progress" ||
		lines[len(lines)-1] != "Call id pending-1 of u1@example.com to sip:dest@example.com: pending" {
		t.Fatalf("%d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	out = h.Handle(&proxy.Request{Command: "debug", Show: "sessions", User: "u1@"}, time.Now())
	if n := strings.Count(out, "\r\n"); n != (2*listChunk+3+6)/7+1 || strings.Contains(out, "of u0@") {
		t.Fatalf("user u1@: %d lines\n%s", n, out)
	}
	pending, inProgress, _ := f.m.Counts()
	if pending != 1 || inProgress != 2*listChunk+3 {
		t.Fatalf("counts %d %d", pending, inProgress)
	}
}
