package daemon

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/proxy/proxytest"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// During a clean stop /readyz says the daemon is stopping from the moment
// the stop begins: also while the stop waits for a proxy request in flight
// (here an init whose engine does not answer), after the proxy socket is
// gone and before the web listener closes. It said the socket was gone
// and to restart callcontrold.
func TestReadyzSaysStoppingWhileAStopWaits(t *testing.T) {
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 1})
	eng.SetRate("0031", ratingtest.PerMinute(0.10))
	// The engine's timeout is long: the stop waits for the init that long
	// unless the engine answers.
	e := newEnv(t, "proxy_timeout = 60000", httpLoopback+"[CDRTool]\naddress = "+eng.Addr()+"\ntimeout = 30000\n")
	if code, body := e.http("GET", "/readyz"); code != 200 {
		t.Fatalf("before the stop: %d %s", code, body)
	}

	eng.Hang(true)
	reply := make(chan string, 1)
	go func() {
		line, err := proxytest.Call(e.sock, proxytest.Lines(initReq("in-flight", "alice")))
		if err != nil {
			line = err.Error()
		}
		reply <- line
	}()
	for deadline := time.Now().Add(15 * time.Second); !hasRequest(eng, "MaxSessionTime CallId=in-flight "); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the engine was not asked (engine saw %q)", eng.Requests())
		}
	}

	d := e.d
	stopped := make(chan struct{})
	go func() { d.Stop(); close(stopped) }()
	t.Cleanup(func() { eng.Stop(); <-stopped })
	e.d = nil // stopped here, not by the env's cleanup

	// The proxy socket is removed first; the stop then waits for the init.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(e.sock); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the proxy socket is still there 15 s into the stop")
		}
	}
	select {
	case <-stopped:
		t.Fatal("the stop did not wait for the init in flight: nothing to check")
	default:
	}
	e.d = d // for e.url: the web listener still serves
	code, body := e.http("GET", "/readyz")
	e.d = nil
	if code != 503 || body != "not ready: callcontrold is stopping\n" {
		t.Errorf("readyz while stopping: %d %q, want 503 and only that it is stopping", code, body)
	}

	// The engine goes away: the init is answered, and the stop ends.
	eng.Stop()
	<-reply
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("the stop did not end once the init was answered")
	}
}

func hasRequest(eng *ratingtest.Engine, prefix string) bool {
	for _, r := range eng.Requests() {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}
