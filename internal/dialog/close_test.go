package dialog

import (
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
)

// A stop while an end waits for its check (the lookup of a restored end)
// must neither send that end unchecked, to a Kamailio that may have
// restarted and given its id to another call, nor log that it does: the
// request stays in the state log for the next start, which checks it.
func TestCloseDuringCheckSendsNothingUnchecked(t *testing.T) {
	for i := 0; i < 30; i++ {
		fake, proxyPath := startFake(t, Kamailio)
		fake.SetAnswerFunc(func(r dialogtest.Request) dialogtest.Answer {
			if r.Method == LookupMethod(Kamailio) {
				return dialogtest.AnswerNone // the proxy is slow to answer the lookup
			}
			return dialogtest.AnswerOK
		})
		h := newClient(t, Options{Flavor: Kamailio, ProxySocket: proxyPath, Timeout: 10 * time.Second})
		h.client.End(Target{CallID: "c1", Dialog: ID{Entry: 1, ID: 2}, Restored: true})
		for deadline := time.Now().Add(10 * time.Second); len(fake.Lookups()) == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("no lookup")
			}
		}
		h.client.Close()
		time.Sleep(20 * time.Millisecond)
		if strings.Contains(h.logs.String(), "without checking") {
			t.Fatalf("run %d: a stop logged as ending the dialog unchecked:\n%s", i, h.logs)
		}
		if n := fake.Len(); n != 0 {
			t.Fatalf("run %d: the proxy got %d end requests, unchecked, at stop", i, n)
		}
	}
}
