package session

import "time"

// A Kamailio whose dialog module has no dlg_flag creates no dialog:
// call_control() still returns 1, and the module sends `stop` about 2 ms
// after `init` (proxy-protocol.md), so no call is ever limited, and no
// `start` ever comes. Nothing but that pattern tells the daemon; it says
// so once. (Kamailio 5.6.3 makes the dialog when the modparam is set even
// if the route does not setflag() it: test/e2e TestKamailioWithoutDialogsReported.)
type noDialogWatch struct {
	answered bool // a start came: the proxy makes dialogs
	quick    int  // calls stopped within quickStop of their init, unanswered
	told     bool
}

const (
	// quickStop is faster than any callee answers a call's INVITE with a
	// failure through a proxy: the module's own stop takes about 2 ms.
	quickStop = 20 * time.Millisecond
	// quickStopsToTell: a few local failures (a proxy rejecting the call
	// itself after call_control) must not be taken for the pattern.
	quickStopsToTell = 20
)

// stoppedLocked counts a stop of s, unanswered, at now; it says whether
// the daemon should now tell the operator.
func (w *noDialogWatch) stoppedLocked(s *Session, now time.Time) bool {
	if w.answered || w.told || s.InProgress() || now.Sub(s.Created) >= quickStop {
		return false
	}
	w.quick++
	if w.quick < quickStopsToTell {
		return false
	}
	w.told = true
	return true
}
