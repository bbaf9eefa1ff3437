package session_test

import (
	"fmt"
	"testing"
	"time"

	. "github.com/callcontrol/callcontrol/internal/session"
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
	done := f.m.EachChunked(nil, func(s *Session) { seen[s.CallID]++ }, func() {
		chunks++
		// Between chunks: end a churn call (holes, then squeezing out
		// of holes, shifts the order) and set up new calls.
		for i := 0; i < 100 && removed < churn; i, removed = i+1, removed+1 {
			f.m.Stop(fmt.Sprintf("churn-%06d", removed))
			f.m.Stop(fmt.Sprintf("late-%06d", removed))
		}
		f.m.Init(initReq(fmt.Sprintf("new-%d", chunks), "x", "false"), time.Now())
	})
	if !done || chunks < (stay+churn)/ListChunk {
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
	if got, calls := f.m.OrderAndTable(); got != calls {
		t.Fatalf("order holds %d sessions, the table %d", got, calls)
	}
}

// A listing whose asker went away stops at the next chunk.
func TestListingStopsWhenTheAskerIsGone(t *testing.T) {
	f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, nil)
	restoreN(f.m, 10*ListChunk, "c")
	asked := 0
	visited := 0
	if f.m.EachChunked(func() bool { asked++; return asked > 2 }, func(*Session) { visited++ }, nil) {
		t.Fatal("walk finished for an asker that went away")
	}
	if visited != 2*ListChunk {
		t.Fatalf("visited %d sessions", visited)
	}
}

func TestWalkBriefListsInOrderOfSetUp(t *testing.T) {
	f := newFixture(t, Limits{Limit: 3600, PrepaidLimit: NoLimit}, nil)
	restoreN(f.m, 2*ListChunk+3, "c")
	f.m.Init(initReq("pending-1", "u1", "false"), time.Now())
	var got []Brief
	if !f.m.WalkBrief(nil, func(chunk []Brief) { got = append(got, chunk...) }) {
		t.Fatal("walk ended early")
	}
	first, last := Brief{"c000000", "sip:u0@example.com", "sip:d@example.com", true},
		Brief{"pending-1", "sip:u1@example.com", "sip:dest@example.com", false}
	if len(got) != 2*ListChunk+4 || got[0] != first || got[len(got)-1] != last {
		t.Fatalf("%d sessions, first %+v, last %+v", len(got), got[0], got[len(got)-1])
	}
	if n := f.m.Len(); n != len(got) {
		t.Fatalf("Len %d, listed %d", n, len(got))
	}
}
