package e2e

import (
	"testing"
	"time"
)

// TestLimitZeroCall: limit = 0 is a real limit (behaviour.md): the call is
// cut and both ends get a BYE. The daemon sends the end request 1 s after
// the answer, not at once: Kamailio may answer OK to a dlg.end_dlg that
// arrives right at the answer and send no BYE (README, what the peers do).
// Sent at once, 2 of 10 runs on a loaded machine lost both BYEs: Kamailio
// logged "terminating non-confirmed dialogs not supported" or
// "build_dlg_t(): invalid cseq", and neither sipp completed.
func TestLimitZeroCall(t *testing.T) {
	s := StartStack(t, StackConfig{Limit: "0"})
	const callID = "e2e-limit0@127.0.0.1"
	caller, callee := s.Call(t, CallConfig{Caller: "caller_wait_bye.xml", Callee: "callee_wait_bye.xml", CallID: callID})
	if t.Failed() {
		return
	}
	assertCutByDaemon(t, s, callID, []*Sipp{caller, callee}, 900*time.Millisecond, 2500*time.Millisecond, "limit = 0, ended 1 s after the answer")
}
