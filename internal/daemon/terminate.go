package daemon

import (
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/journal"
	"github.com/callcontrol/callcontrol/internal/session"
)

// terminateWait is how long an operator's terminate waits for the proxy to
// confirm before saying the end is asked but not confirmed yet.
const terminateWait = 3 * time.Second

// maxEndsListed bounds the unconfirmed dialog ends listed in stats.
const maxEndsListed = 20

// terminate ends callID and reports what the proxy said within wait: the
// operator is told "ended" only once the proxy confirmed.
func terminate(m *session.Manager, ends *journal.DialogEnds, callID string, wait time.Duration) (control.TerminateInfo, bool) {
	watch := ends.Watch(callID)
	defer ends.Unwatch(callID, watch)
	switch m.Terminate(callID) {
	case session.TerminateUnknown:
		if _, ok := ends.ByCallID(callID); !ok {
			return control.TerminateInfo{}, false
		}
		// Ended already, its dialog end not confirmed: wait for it as well.
	case session.TerminateAtAnswer:
		return control.TerminateInfo{Outcome: control.TerminateAtAnswer,
			Detail: "the call is ringing and the proxy can end it only once answered: it will be ended the moment it is"}, true
	case session.TerminateShuttingDown:
		return control.TerminateInfo{Outcome: control.TerminateFailed, Detail: "callcontrold is stopping: nothing was done"}, true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case o := <-watch:
		switch o {
		case dialog.Confirmed:
			return control.TerminateInfo{Outcome: control.TerminateEnded}, true
		case dialog.Gone:
			return control.TerminateInfo{Outcome: control.TerminateGone,
				Detail: "the proxy no longer knew the dialog: the call had ended; its session is closed"}, true
		default:
			return control.TerminateInfo{Outcome: control.TerminateFailed,
				Detail: "the proxy cannot end this call: it gave no usable dialog id at start; the session is closed, end the call on the proxy"}, true
		}
	case <-t.C:
		return control.TerminateInfo{Outcome: control.TerminatePending,
			Detail: "the proxy has not confirmed yet; the request is kept and sent again until it does (see callcontrol stats)"}, true
	}
}

func endingInfo(p journal.PendingEnd) control.SessionInfo {
	i := control.SessionInfo{CallID: p.Target.CallID, State: "ending", EndRequested: p.Since,
		Limit: session.NoLimit, Remaining: session.NoLimit}
	if !p.Target.NoID {
		i.DialogID = p.Target.Dialog.String()
	}
	return i
}

// oldestEnds lists up to n unconfirmed dialog ends, oldest first.
func oldestEnds(e *journal.DialogEnds, n int) []control.PendingDialogEnd {
	all := e.Oldest(n)
	now := time.Now()
	out := make([]control.PendingDialogEnd, 0, len(all))
	for _, p := range all {
		pe := control.PendingDialogEnd{CallID: p.Target.CallID, AgeSeconds: now.Sub(p.Since).Seconds()}
		if !p.Target.NoID {
			pe.DialogID = p.Target.Dialog.String()
		}
		out = append(out, pe)
	}
	return out
}
