package dialog

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
)

// A restarted Kamailio hands out dialog ids again from a random point of
// a small range (rand() % (3 * hash_size) per hash entry), so an end
// request that may reach a Kamailio restarted since its id was given can
// name another call. Such a request (restored from the state log, sent
// again after no answer, or after the proxy's socket was gone) is sent
// only if the Call-ID's dialog still has its id.
func TestEndCheckedAfterPossibleRestart(t *testing.T) {
	ours := ID{Entry: 1079, ID: 6296}
	tests := []struct {
		name     string
		flavor   Flavor
		restored bool
		mute     bool // the first attempt gets no answer (the proxy was going down)
		listed   *dialogtest.Dialog
		lookups  bool // the proxy is mute to lookups too
		want     Outcome
		ends     int // end requests the proxy got
	}{
		{name: "restored, same dialog", flavor: Kamailio, restored: true,
			listed: &dialogtest.Dialog{State: 4, Entry: ours.Entry, ID: ours.ID, StartTS: 1}, want: Confirmed, ends: 1},
		{name: "restored, the Call-ID's dialog has another id", flavor: Kamailio, restored: true,
			listed: &dialogtest.Dialog{State: 4, Entry: ours.Entry, ID: 17, StartTS: 1}, want: Gone, ends: 0},
		{name: "restored, no dialog of the Call-ID", flavor: Kamailio, restored: true, want: Gone, ends: 0},
		{name: "restored, ended dialog still listed", flavor: Kamailio, restored: true,
			listed: &dialogtest.Dialog{State: 5, Entry: ours.Entry, ID: ours.ID, StartTS: 1}, want: Gone, ends: 0},
		{name: "unanswered, then another dialog of the Call-ID", flavor: Kamailio, mute: true,
			listed: &dialogtest.Dialog{State: 4, Entry: 3, ID: 4, StartTS: 1}, want: Gone, ends: 1},
		{name: "unanswered, then the same dialog", flavor: Kamailio, mute: true,
			listed: &dialogtest.Dialog{State: 4, Entry: ours.Entry, ID: ours.ID, StartTS: 1}, want: Confirmed, ends: 2},
		{name: "restored, lookups unanswered: ended unchecked", flavor: Kamailio, restored: true, lookups: true,
			want: Confirmed, ends: 1},
		{name: "OpenSIPS ends by Call-ID: no check", flavor: OpenSIPS, restored: true, want: Confirmed, ends: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, proxyPath := startFake(t, tt.flavor)
			if tt.listed != nil {
				fake.SetDialog("c1", *tt.listed)
			}
			fake.SetAnswerFunc(func(r dialogtest.Request) dialogtest.Answer {
				if tt.lookups && r.Method == LookupMethod(tt.flavor) {
					return dialogtest.AnswerNone
				}
				if tt.mute && r.Method != LookupMethod(tt.flavor) && fake.Len() <= 1 {
					return dialogtest.AnswerNone
				}
				return dialogtest.AnswerOK
			})
			done := make(chan Outcome, 2)
			h := newClient(t, Options{Flavor: tt.flavor, ProxySocket: proxyPath, Timeout: 300 * time.Millisecond, MaxRetryWait: time.Second,
				OnDone: func(_ Target, o Outcome) { done <- o }})
			h.client.End(Target{CallID: "c1", Dialog: ours, Restored: tt.restored})
			select {
			case o := <-done:
				if o != tt.want {
					t.Errorf("outcome %v, want %v\n%s", o, tt.want, h.logs)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("no outcome\n%s", h.logs)
			}
			if n := fake.Len(); n != tt.ends {
				t.Errorf("the proxy got %d end requests, want %d: %+v", n, tt.ends, fake.Requests())
			}
			wantLookup := tt.flavor == Kamailio
			if got := len(fake.Lookups()) > 0; got != wantLookup {
				t.Errorf("looked up: %v, want %v", got, wantLookup)
			}
		})
	}
}

// While Kamailio's socket is gone (it restarts), an end is held; once a
// Kamailio is back, the end is sent only if the Call-ID's dialog still has
// its id.
func TestEndCheckedWhenProxySocketReturns(t *testing.T) {
	ours := ID{Entry: 1079, ID: 6296}
	for _, tt := range []struct {
		name   string
		listed dialogtest.Dialog
		want   Outcome
		ends   int
	}{
		{name: "same dialog", listed: dialogtest.Dialog{State: 4, Entry: ours.Entry, ID: ours.ID, StartTS: 1}, want: Confirmed, ends: 1},
		{name: "another call has the id's Call-ID slot", listed: dialogtest.Dialog{State: 4, Entry: ours.Entry, ID: 9, StartTS: 1}, want: Gone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			proxyPath := filepath.Join(dialogtest.SocketDir(t), "proxy.sock")
			done := make(chan Outcome, 1)
			h := newClient(t, Options{Flavor: Kamailio, ProxySocket: proxyPath, Timeout: 300 * time.Millisecond,
				MaxRetryWait: time.Second, maxRefusedWait: 5 * time.Millisecond, OnDone: func(_ Target, o Outcome) { done <- o }})
			h.client.End(Target{CallID: "c1", Dialog: ours})
			for deadline := time.Now().Add(10 * time.Second); h.client.refused.Load() < 3; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no send refused")
				}
			}
			// The fake lists the dialog before the client can reach it: it
			// is made aside, then moved into place (the client retries
			// every 5 ms, and a lookup before SetDialog found nothing).
			aside := proxyPath + ".new"
			fake := dialogtest.NewKamailio(t, aside)
			fake.SetDialog("c1", tt.listed)
			if err := os.Rename(aside, proxyPath); err != nil {
				t.Fatal(err)
			}
			select {
			case o := <-done:
				if o != tt.want {
					t.Errorf("outcome %v, want %v\n%s", o, tt.want, h.logs)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("no outcome\n%s", h.logs)
			}
			if n := fake.Len(); n != tt.ends {
				t.Errorf("the proxy got %d end requests, want %d", n, tt.ends)
			}
			if len(fake.Lookups()) == 0 {
				t.Error("no lookup before the end")
			}
		})
	}
}
