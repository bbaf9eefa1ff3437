package daemon

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/session"
)

// A listing waiting for the table's one listing slot (another listing
// runs) gives up when its asker goes away (the web request's context),
// and takes nothing from the listing that runs.
func TestListingWaitingForTheSlotStopsWhenTheAskerGoes(t *testing.T) {
	e := newEnv(t, "limit = 3600", "")
	release := holdListingSlot(t, e)

	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	called := false
	go func() {
		second <- backend{e.d}.Sessions(ctx, "", func([]control.SessionInfo) error { called = true; return nil })
	}()
	cancel()
	select {
	case err := <-second:
		if !errors.Is(err, context.Canceled) || called {
			t.Errorf("the listing whose asker went away returned %v (f called: %v), want context canceled", err, called)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a listing whose asker went away still waits for the slot after 20 s")
	}
	if !release() {
		t.Error("the listing that held the slot was cut short")
	}
	n := 0
	if err := (backend{e.d}).Sessions(t.Context(), "", func(c []control.SessionInfo) error { n += len(c); return nil }); err != nil || n != 1 {
		t.Errorf("the next listing: %d sessions, %v", n, err)
	}
}

// holdListingSlot gives the table one call and starts a listing that holds
// the table's one listing slot (it waits in its first visit) until release,
// which reports whether that listing walked to its end. The test's cleanup
// releases it too.
func holdListingSlot(t *testing.T, e *env) (release func() bool) {
	e.d.sessions.Restore([]*session.Session{{CallID: "1@gone", Party: "sip:u@example.com", RURI: "sip:d@example.com",
		Limit: session.NoLimit, Cap: session.NoLimit, Created: time.Now().Add(-time.Minute)}})
	holding, goOn := make(chan struct{}), make(chan struct{})
	first := make(chan bool, 1)
	go func() {
		first <- e.d.sessions.Walk(nil, func(*session.Session) {
			close(holding)
			<-goOn
		})
	}()
	<-holding
	var once sync.Once
	var walked bool
	release = func() bool {
		once.Do(func() {
			close(goOn)
			walked = <-first
		})
		return walked
	}
	t.Cleanup(func() { release() })
	return release
}
