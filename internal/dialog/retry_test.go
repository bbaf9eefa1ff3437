package dialog

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
)

// TestClientMuteProxy ends 10,000 calls due in the same second against a
// proxy that reads every request and never answers (its replies cannot
// reach us, or it answers garbage): a mute proxy must not pace the others.
// Every request is sent within 10 s, and each is sent again.
func TestClientMuteProxy(t *testing.T) {
	const n = 10000
	fake, proxyPath := startFake(t, Kamailio)
	fake.SetAnswer(dialogtest.AnswerNone)
	h := newClient(t, Options{Flavor: Kamailio, ProxySocket: proxyPath, Timeout: time.Second, MaxRetryWait: 2 * time.Second})

	start := time.Now()
	for i := range n {
		h.client.End(Target{CallID: "mute-" + strconv.Itoa(i), Dialog: ID{Entry: uint32(i >> 8), ID: uint32(i)}})
	}
	key := func(i int) string { return ID{Entry: uint32(i >> 8), ID: uint32(i)}.String() }

	// Every one sent once, within 10 s of being due.
	firstAt := map[string]time.Time{}
	reqs := fake.WaitFor(n, 60*time.Second)
	for _, r := range reqs {
		if _, ok := firstAt[r.Key()]; !ok {
			firstAt[r.Key()] = r.At
		}
	}
	var last time.Time
	for i := range n {
		at, ok := firstAt[key(i)]
		if !ok {
			t.Fatalf("%s never sent (%d of %d distinct)", key(i), len(firstAt), n)
		}
		if at.After(last) {
			last = at
		}
	}
	if took := last.Sub(start); took > 10*time.Second {
		t.Errorf("the last of %d requests was first sent %v after they were due, want within 10s", n, took)
	} else {
		t.Logf("all %d sent within %v", n, took.Round(time.Millisecond))
	}

	// And each one sent again, as no answer came.
	deadline := time.Now().Add(60 * time.Second)
	for {
		seen := map[string]int{}
		for _, r := range fake.Requests() {
			seen[r.Key()]++
		}
		missing := 0
		for i := range n {
			if seen[key(i)] < 2 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests never sent again", missing, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if p := h.client.Pending(); p != n {
		t.Errorf("Pending() = %d, want %d: none is given up", p, n)
	}
}

// TestClientNumericIDFallback: with a numeric dialog_id form, OpenSIPS'
// 404 may mean "no such form here": the client asks once more by Call-ID
// and says which setting to use. A 404 by Call-ID is final.
func TestClientNumericIDFallback(t *testing.T) {
	tests := []struct {
		name      string
		key       OpenSIPSKey
		callIDOK  bool // the dialog is there by Call-ID
		firstKey  string
		want      Outcome
		wantWarns []string
	}{
		{name: "passthrough on 3.1+", key: ByDecimalID, callIDOK: true, firstKey: "4634269718680", want: Confirmed,
			wantWarns: []string{"level=WARN", "passthrough works only on OpenSIPS 3.0", "dialog_id = callid", "callid=fb-call"}},
		{name: "numeric on 3.0", key: ByHexID, callIDOK: true, firstKey: "734.8981", want: Confirmed,
			wantWarns: []string{"level=WARN", "numeric needs OpenSIPS 3.1", "dialog_id = callid"}},
		{name: "really gone", key: ByDecimalID, callIDOK: false, firstKey: "4634269718680", want: Gone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, proxyPath := startFake(t, OpenSIPS)
			fake.SetAnswerFunc(func(r dialogtest.Request) dialogtest.Answer {
				if r.DialogID == "fb-call" && tt.callIDOK {
					return dialogtest.AnswerOK
				}
				return dialogtest.AnswerNotFound
			})
			var mu sync.Mutex
			var finals []Outcome
			doneCh := make(chan struct{}, 1)
			h := newClient(t, Options{Flavor: OpenSIPS, ProxySocket: proxyPath, OpenSIPSKey: tt.key, Timeout: 5 * time.Second,
				OnDone: func(_ Target, o Outcome) {
					mu.Lock()
					finals = append(finals, o)
					mu.Unlock()
					doneCh <- struct{}{}
				}})
			h.client.End(Target{CallID: "fb-call", Dialog: ID{Entry: 1079, ID: 6296}})
			select {
			case <-doneCh:
			case <-time.After(20 * time.Second):
				t.Fatal("no final outcome")
			}
			reqs := fake.Requests()
			if len(reqs) != 2 || reqs[0].DialogID != tt.firstKey || reqs[1].DialogID != "fb-call" {
				var keys []string
				for _, r := range reqs {
					keys = append(keys, r.DialogID)
				}
				t.Fatalf("requests named %v, want [%s fb-call]", keys, tt.firstKey)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(finals) != 1 || finals[0] != tt.want {
				t.Fatalf("final outcomes %v, want [%v]", finals, tt.want)
			}
			if tt.wantWarns != nil && h.logs.lineWith(tt.wantWarns...) == "" {
				t.Fatalf("no line with %q:\n%s", tt.wantWarns, h.logs)
			}
		})
	}
}

// TestClientNoDialogID: a call with no usable dialog id (still ringing, or
// a dialogid that did not parse) is ended by Call-ID on OpenSIPS; Kamailio
// cannot end it, which is said in an ERROR naming the call, never by a
// request for dialog 0:0.
func TestClientNoDialogID(t *testing.T) {
	for _, flavor := range []Flavor{OpenSIPS, Kamailio} {
		t.Run(flavor.String(), func(t *testing.T) {
			fake, proxyPath := startFake(t, flavor)
			got := make(chan Outcome, 1)
			h := newClient(t, Options{Flavor: flavor, ProxySocket: proxyPath, OpenSIPSKey: ByHexID,
				OnDone: func(_ Target, o Outcome) { got <- o }})
			h.client.End(Target{CallID: "ringing@x", NoID: true})
			var o Outcome
			select {
			case o = <-got:
			case <-time.After(20 * time.Second):
				t.Fatal("no final outcome")
			}
			if flavor == OpenSIPS {
				reqs := fake.Requests()
				if o != Confirmed || len(reqs) != 1 || reqs[0].DialogID != "ringing@x" {
					t.Fatalf("outcome %v, requests %+v: want one by Call-ID, confirmed", o, reqs)
				}
				return
			}
			// Nothing was queued, so nothing can be sent later.
			if o != Unendable || h.client.Pending() != 0 || fake.Len() != 0 {
				t.Fatalf("outcome %v, %d pending, %d requests: want unendable, none queued or sent", o, h.client.Pending(), fake.Len())
			}
			if h.logs.lineWith("level=ERROR", "callid=ringing@x", "cannot end") == "" {
				t.Fatalf("no ERROR naming the call:\n%s", h.logs)
			}
		})
	}
}

// TestClientLateAnswerCounts: an answer to an earlier attempt of a request
// that was sent again still settles it, once.
func TestClientLateAnswerCounts(t *testing.T) {
	dir := dialogtest.SocketDir(t)
	proxyPath := filepath.Join(dir, "proxy.sock")
	fake := dialogtest.NewKamailio(t, proxyPath)
	fake.SetAnswer(dialogtest.AnswerNone)
	got := make(chan Outcome, 4)
	// Every wait is 200 ms, so no deadline is further than that away.
	const wait = 200 * time.Millisecond
	h := newClient(t, Options{Flavor: Kamailio, ProxySocket: proxyPath, Timeout: wait, MaxRetryWait: wait,
		OnDone: func(_ Target, o Outcome) { got <- o }})
	h.client.End(Target{CallID: "late", Dialog: ID{Entry: 3, ID: 4}})
	reqs := fake.WaitFor(2, 20*time.Second)
	// Answer the first attempt only, by hand.
	if err := fake.ReplyTo(reqs[0], dialogtest.AnswerOK); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-got:
		if o != Confirmed {
			t.Fatalf("outcome %v", o)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("late answer not taken")
	}
	if p := h.client.Pending(); p != 0 {
		t.Fatalf("still pending (%d) after the outcome", p)
	}
	// An answer to the second attempt too: read, and it settles nothing.
	if err := fake.ReplyTo(reqs[1], dialogtest.AnswerOK); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); h.logs.lineWith("reply to no pending request", "id="+string(reqs[1].ID)) == ""; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("second answer not read:\n%s", h.logs)
		}
	}
	if len(got) != 0 || h.client.Pending() != 0 {
		t.Fatalf("more outcomes (%d) or still pending (%d)", len(got), h.client.Pending())
	}
	// No attempt of a settled request starts: the one logged with the
	// outcome was the last. To see that no deadline of it sends it again,
	// send a marker after the outcome: its first deadline comes after any
	// of "late" (every wait is the same), the janitor takes deadlines in
	// order and the sender sends in order, and datagrams arrive in order.
	attempts := h.logs.lineWith("dialog ended", "callid=late")
	h.client.End(Target{CallID: "marker", Dialog: ID{Entry: 5, ID: 6}})
	for deadline := time.Now().Add(20 * time.Second); ; {
		sent := 0
		for _, r := range fake.Requests() {
			if r.Key() == "5:6" {
				sent++
			}
		}
		if sent >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the marker was not sent again: %d attempts", sent)
		}
		fake.WaitFor(fake.Len()+1, 20*time.Second)
	}
	late := 0
	for _, r := range fake.Requests() {
		if r.Key() == "3:4" {
			late++
		}
	}
	if want := fmt.Sprintf("attempts=%d ", late); !strings.Contains(attempts+" ", want) {
		t.Fatalf("%d requests for the settled call, but it ended with: %s", late, attempts)
	}
}
