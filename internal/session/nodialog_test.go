package session_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	. "github.com/callcontrol/callcontrol/internal/session"
)

// A Kamailio whose dialog module has no dlg_flag (or whose route does not
// set it before call_control) creates no dialog: call_control() returns 1,
// the module sends `stop` about 2 ms after `init`, and no call is limited
// (proxy-protocol.md). The daemon says so once, as an ERROR, when no call
// was ever answered and calls keep ending that fast; never when calls are
// answered, nor for calls that fail at the pace of a real callee.
func TestCallsNeverAnsweredAndStoppedAtOnceAreReported(t *testing.T) {
	for _, tc := range []struct {
		name      string
		calls     int
		stopAfter time.Duration
		answerAt  int // this call is answered (start), -1 for none
		want      int // ERROR lines about dialogs
	}{
		{name: "no dialogs: every stop 2 ms after its init", calls: 30, stopAfter: 2 * time.Millisecond, answerAt: -1, want: 1},
		{name: "too few to tell", calls: 9, stopAfter: 2 * time.Millisecond, answerAt: -1, want: 0},
		{name: "a call was answered: dialogs are made", calls: 30, stopAfter: 2 * time.Millisecond, answerAt: 3, want: 0},
		{name: "calls failing at a callee's pace", calls: 30, stopAfter: 300 * time.Millisecond, answerAt: -1, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, Limits{Limit: 60, PrepaidLimit: NoLimit}, nil)
				var buf syncBuffer
				f.m.SetLog(slog.New(slog.NewTextHandler(&buf, nil)))
				for i := 0; i < tc.calls; i++ {
					id := fmt.Sprintf("c%d", i)
					if got := f.m.Init(initReq(id, "alice", ""), time.Now()); got != ReplyLimited {
						t.Fatalf("init: %q", got)
					}
					if i == tc.answerAt {
						f.m.Start(id, "1:2", time.Now())
					}
					time.Sleep(tc.stopAfter)
					f.m.Stop(id)
				}
				got := 0
				for _, l := range buf.lines("ERROR") {
					if strings.Contains(l, "dlg_flag") {
						got++
					}
				}
				if got != tc.want {
					t.Fatalf("%d ERROR lines about dialogs, want %d:\n%s", got, tc.want, strings.Join(buf.lines("ERROR"), "\n"))
				}
			})
		})
	}
}
