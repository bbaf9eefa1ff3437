package rating

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// TestHealthyOnlyReads: asking whether an engine is healthy starts
// nothing, even with a probe due; probeIfDue starts the one probe, which
// brings the engine back without a request having to fail on it.
func TestHealthyOnlyReads(t *testing.T) {
	eng := ratingtest.New(t)
	c := NewConn(eng.Addr(), Options{MinBackoff: time.Hour, MaxBackoff: time.Hour}, testLog(t))
	defer c.Close()
	eng.Stop()
	if _, err := c.MaxSessionTime(context.Background(), testReq); !errors.Is(err, ErrNotSent) {
		t.Fatalf("stopped engine: %v", err)
	}
	if err := eng.Restart(true); err != nil {
		t.Fatal(err)
	}
	probing := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.probing
	}

	// Within the backoff nothing is due: probeIfDue waits too.
	c.probeIfDue()
	if probing() {
		t.Fatal("probe started within the backoff")
	}

	c.mu.Lock()
	c.next = time.Time{} // the backoff has passed
	c.mu.Unlock()
	for range 3 {
		if c.Healthy() {
			t.Fatal("healthy before any reconnect")
		}
	}
	if probing() || c.Connected() {
		t.Fatal("Healthy started a probe")
	}

	c.probeIfDue()
	deadline := time.Now().Add(10 * time.Second)
	for !c.Healthy() {
		if time.Now().After(deadline) {
			t.Fatal("the probe never reconnected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !c.Connected() {
		t.Error("healthy but not connected")
	}
}
