package e2e

import (
	"testing"
	"time"
)

// TestLimitZeroCall: limit = 0 is a real limit of 0 seconds (behaviour.md):
// the daemon answers Limited and asks Kamailio to end the dialog at its
// `start`, and both ends get a BYE. Kamailio 5.6.3 sends them even though
// the request comes before the caller's ACK (seen with the ACK 300 ms
// late, and with 180 Ringing first).
func TestLimitZeroCall(t *testing.T) {
	s := StartStack(t, StackConfig{Limit: "0"})
	const callID = "e2e-limit0@127.0.0.1"
	caller, callee := s.Call(t, CallConfig{Caller: "caller_wait_bye.xml", Callee: "callee_wait_bye.xml", CallID: callID})
	if t.Failed() {
		return
	}
	assertCutByDaemon(t, s, callID, []*Sipp{caller, callee}, 0, 800*time.Millisecond, "limit = 0")
}
