package session_test

import (
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/session"
)

// callTo sets up and answers call id of the account to ruri on d.
func callTo(t *testing.T, d daemon, id, ruri string) {
	t.Helper()
	r := &session.InitRequest{CallID: id, RURI: ruri, Diverter: "None", SourceIP: "10.0.0.1",
		From: "<sip:" + account + ">;tag=" + id, FromTag: id, Prepaid: "true"}
	if got := d.m.Init(r, time.Now()); got != session.ReplyLimited {
		t.Fatalf("init %s: %s", id, got)
	}
	if got := d.m.Start(id, "1:2", time.Now()); got != session.ReplyOk {
		t.Fatalf("start %s: %s", id, got)
	}
}
