package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/proxy/proxytest"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// An init whose question never reached the engine (connection refused) is
// refused without owing the engine a release: when the engine is back, no
// 0 s DebitBalance is sent for it. One that reached the engine and got no
// answer is released.
func TestReleasesOnlyForQuestionsSent(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
	eng.SetRate("0031", ratingtest.PerMinute(0.10))
	e := newEnv(t, "", "[CDRTool]\naddress = "+eng.Addr()+"\ntimeout = 300\n")

	eng.Stop()
	if got := e.call(initReq("refused", "alice")); got != "Error" {
		t.Fatalf("engine down: %q", got)
	}
	if err := eng.Restart(true); err != nil {
		t.Fatal(err)
	}
	// A reload checks the engine at once, despite the reconnect backoff.
	if _, err := e.ctl().Reload(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := e.ctl().Stats()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Engines) == 1 && st.Engines[0].State == "connected" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine not connected after the reload: %+v", st.Engines)
		}
	}
	// A question the engine reads but never answers: its fate is unknown.
	// The engine answers again once it has read it, so that the release
	// is answered at once, not after the debit's own timeout.
	eng.Hang(true)
	reply := make(chan string, 1)
	go func() {
		line, err := proxytest.Call(e.sock, proxytest.Lines(initReq("unanswered", "alice")))
		if err != nil {
			line = err.Error()
		}
		reply <- line
	}()
	asked := func() bool {
		for _, r := range eng.Requests() {
			if strings.HasPrefix(r, "MaxSessionTime CallId=unanswered ") {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(15 * time.Second); !asked(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the engine was not asked (engine saw %q)", eng.Requests())
		}
	}
	eng.Hang(false)
	if got := <-reply; got != "Error" {
		t.Fatalf("engine mute: %q", got)
	}

	released := func() (n int) {
		for _, r := range eng.Requests() {
			if strings.HasPrefix(r, "DebitBalance CallId=unanswered ") && strings.Contains(r, " Duration=0 ") {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(15 * time.Second)
	for released() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if released() == 0 {
		t.Fatalf("the unanswered question was not released (engine saw %q)", eng.Requests())
	}
	c := e.ctl() // one connection: the server limits them
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.PrepaidRefused != 2 {
			t.Fatalf("prepaid refused %d, want 2", st.PrepaidRefused)
		}
		if st.DebitsWaiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d debits still waiting (engine saw %q)", st.DebitsWaiting, eng.Requests())
		}
	}
	for _, r := range eng.Requests() {
		if strings.Contains(r, "CallId=refused") {
			t.Fatalf("the engine got a request for a question it never saw: %q", r)
		}
	}
}
