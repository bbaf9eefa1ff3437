package daemon

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/session"
)

// The control socket's and the web's listing passes the table on in
// chunks of at most sessionsChunk (the manager copies its own chunks
// under the lock, 256 per hold: the proxy path waits for no more), never
// as one slice; oldest first, saved sessions too (restored in no order).
// Asserted by structure (chunk sizes, order), not by the clock.
func TestSessionsListedInChunksOldestFirst(t *testing.T) {
	e := newEnv(t, "limit = 3600", "")
	const n = 3*sessionsChunk + 17
	t0 := time.Now().Add(-time.Hour)
	var saved []*session.Session
	for i := range n {
		saved = append(saved, &session.Session{CallID: fmt.Sprintf("%04d@list", i), Party: fmt.Sprintf("sip:u%d@example.com", i%3),
			RURI: "sip:d@example.com", Limit: session.NoLimit, Cap: session.NoLimit, Created: t0.Add(time.Duration(i) * time.Second)})
	}
	rand.Shuffle(len(saved), func(i, j int) { saved[i], saved[j] = saved[j], saved[i] })
	e.d.sessions.Restore(saved)

	for _, c := range []struct {
		prefix string
		want   int
	}{{"", n}, {"u1@", (n + 1) / 3}, {"sip:U2@", n / 3}, {"nobody", 0}} {
		var got []control.SessionInfo
		chunks := 0
		err := backend{e.d}.Sessions(t.Context(), c.prefix, func(chunk []control.SessionInfo) error {
			if len(chunk) == 0 || len(chunk) > sessionsChunk {
				t.Errorf("%q: a chunk of %d sessions", c.prefix, len(chunk))
			}
			chunks++
			got = append(got, chunk...)
			return nil
		})
		if err != nil || len(got) != c.want {
			t.Fatalf("%q: %d sessions, %v; want %d", c.prefix, len(got), err, c.want)
		}
		if c.prefix == "" && chunks < n/sessionsChunk {
			t.Errorf("%d sessions in %d chunks", n, chunks)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Created.Before(got[i-1].Created) {
				t.Fatalf("%q: %s (created %v) listed after %s (created %v)", c.prefix, got[i].CallID, got[i].Created, got[i-1].CallID, got[i-1].Created)
			}
		}
	}

	// An error from f (a client gone, a write timed out) ends the walk.
	stop := fmt.Errorf("client gone")
	calls := 0
	if err := (backend{e.d}).Sessions(t.Context(), "", func([]control.SessionInfo) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("listing after its f failed: %v, f called %d times", err, calls)
	}
}
