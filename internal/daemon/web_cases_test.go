package daemon

import (
	"fmt"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/session"
)

// A party prefix typed with "SIP:" finds the party's calls, as "sip:" and
// none do (the scheme is case-insensitive, RFC 3261 19.1.4; parties are
// folded): the page's filter and `callcontrol sessions SIP:alice` found
// nothing.
func TestPartyPrefixSchemeAnyCase(t *testing.T) {
	e := newEnv(t, "limit = 3600", "")
	t0 := time.Now().Add(-time.Minute)
	var saved []*session.Session
	for i := range 4 {
		saved = append(saved, &session.Session{CallID: fmt.Sprintf("%d@case", i), Party: fmt.Sprintf("sip:u%d@example.com", i%2),
			RURI: "sip:d@example.com", Limit: session.NoLimit, Cap: session.NoLimit, Created: t0.Add(time.Duration(i) * time.Second)})
	}
	e.d.sessions.Restore(saved)
	for _, prefix := range []string{"u1@", "sip:u1@", "SIP:u1@", "Sip:U1@Example"} {
		n := 0
		err := (backend{e.d}).Sessions(t.Context(), prefix, func(chunk []control.SessionInfo) error { n += len(chunk); return nil })
		if err != nil || n != 2 {
			t.Errorf("%q: %d sessions (%v), want 2", prefix, n, err)
		}
	}
}
