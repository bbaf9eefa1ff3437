package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/sipdialog"
	"github.com/callcontrol/callcontrol/test/harness"
)

// TestDialogLookup: the dialog client's Lookup against a real Kamailio and
// the real daemon, through one sipp call (see testDialogLookup).
func TestDialogLookup(t *testing.T) {
	s := StartStack(t, StackConfig{Limit: "60"})
	testDialogLookup(t, s, dialog.Kamailio)
}

// TestOpenSIPSDialogLookup is TestDialogLookup against each OpenSIPS
// version.
func TestOpenSIPSDialogLookup(t *testing.T) {
	harness.RequireTool(t, "sipp", "sip-tester")
	for _, v := range opensipsVersions {
		t.Run(v, func(t *testing.T) {
			requireOpenSIPS(t, v)
			testDialogLookup(t, startOpenSIPSStack(t, "60", OpenSIPSConfig{Version: v}), dialog.OpenSIPS)
		})
	}
}

// testDialogLookup makes a call that rings 2 s, is answered, ACKed 1.5 s
// later (the proxy holds it answered, not confirmed) and hung up by the
// caller 2 s after that, and asks the proxy's own management socket about
// it all along with a dialog.Client: ringing, it exists unanswered;
// answered, it has the dialog id the proxy gave the daemon at start and
// the answer time; after the BYE it is gone. A Call-ID never seen is not
// found, without error.
func testDialogLookup(t *testing.T, s *Stack, flavor dialog.Flavor) {
	dir := harness.ShortDir(t, "cce2e-lookup")
	c, err := dialog.New(dialog.Options{Flavor: flavor, ProxySocket: s.KamRPC, LocalSocket: filepath.Join(dir, "dialog.sock"),
		Timeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lookup := func(callID string) sipdialog.Found {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f, err := c.Lookup(ctx, callID)
		if err != nil {
			t.Fatalf("Lookup(%s): %v", callID, err)
		}
		return f
	}
	if f := lookup("never-seen@127.0.0.1"); f != (sipdialog.Found{}) {
		t.Errorf("Lookup of an unknown Call-ID = %+v, want not found", f)
	}

	id := strings.NewReplacer("/", "-", ".", "_").Replace(t.Name()) + "@127.0.0.1"
	callee := StartSipp(t, SippConfig{Name: "callee", Scenario: "callee_ring_2s_wait_bye.xml", Timeout: 30 * time.Second})
	caller := StartSipp(t, SippConfig{Name: "caller", Scenario: "caller_late_ack.xml", Remote: callee.Addr(),
		Proxy: s.Proxy.Addr(), CallID: id, PauseMS: 2000, Timeout: 30 * time.Second})

	var ringing, answered sipdialog.Found
	harness.WaitFor(t, "the proxy's dialog of "+id, caller.Proc, 10*time.Second, func() bool {
		ringing = lookup(id)
		return ringing.Exists
	})
	if ringing.Answered || !ringing.AnsweredAt.IsZero() {
		t.Errorf("first Lookup of the ringing call = %+v, want it exists, unanswered", ringing)
	}
	harness.WaitFor(t, "the answer of "+id, caller.Proc, 10*time.Second, func() bool {
		answered = lookup(id)
		return answered.Answered
	})
	asked := time.Now()
	if !answered.Exists || !answered.HasDialog {
		t.Errorf("Lookup of the answered call = %+v, want it exists with a dialog id", answered)
	}
	if d := asked.Sub(answered.AnsweredAt); d < -time.Second || d > 3*time.Second {
		t.Errorf("answered at %v, %v before the Lookup; want within a few seconds", answered.AnsweredAt, d)
	}
	if ringing.HasDialog && ringing.Dialog != answered.Dialog {
		t.Errorf("the dialog id changed at the answer: %v, then %v", ringing.Dialog, answered.Dialog)
	}
	var start sipdialog.ID
	harness.WaitFor(t, "start of "+id, s.Daemon.Proc(), 10*time.Second, func() bool {
		reqs := wireRequests(s.Daemon, "start", id)
		if len(reqs) == 0 {
			return false
		}
		start = startWireDialogID(t, reqs[0])
		return true
	})
	if answered.Dialog != start {
		t.Errorf("Lookup gave dialog %v, the proxy's start said %v", answered.Dialog, start)
	}

	caller.Wait(t, 30*time.Second)
	callee.Wait(t, 30*time.Second)
	if t.Failed() {
		return
	}
	if at := callee.Events(t)["answered"]; answered.AnsweredAt.Before(at.Truncate(time.Second).Add(-time.Second)) || answered.AnsweredAt.After(at.Add(time.Second)) {
		t.Errorf("Lookup's answer time %v, the callee answered at %v", answered.AnsweredAt, at)
	}
	var after sipdialog.Found
	harness.WaitFor(t, "the end of "+id, nil, 10*time.Second, func() bool {
		after = lookup(id)
		return !after.Exists
	})
	// Kamailio still lists the ended dialog a while, with what it lasted;
	// OpenSIPS answers 404.
	switch {
	case after.Ended:
		if after.Dialog != answered.Dialog || !after.AnsweredAt.Equal(answered.AnsweredAt) || after.EndedAt.Before(after.AnsweredAt) {
			t.Errorf("Lookup after the BYE = %+v, want the ended dialog %v answered at %v", after, answered.Dialog, answered.AnsweredAt)
		}
	case after != (sipdialog.Found{}):
		t.Errorf("Lookup after the BYE = %+v, want not found, or ended", after)
	}
	t.Logf("%s: ringing %+v; answered %+v; start dialogid %v", s.Proxy.Name(), ringing, answered, start)
}

// startWireDialogID reads the dialogid of a start request in the daemon's
// debug log (request="start\r\n...dialogid: ...\r\n...").
func startWireDialogID(t *testing.T, line string) sipdialog.ID {
	t.Helper()
	i := strings.Index(line, `\r\ndialogid: `)
	if i < 0 {
		t.Fatalf("start has no dialogid: %s", line)
	}
	v, _, _ := strings.Cut(line[i+len(`\r\ndialogid: `):], `\r\n`)
	id, err := sipdialog.ParseID(v)
	if err != nil {
		t.Fatalf("start's dialogid: %v", err)
	}
	return id
}

// TestLookupCapture records the proxies' answers to a dialog lookup by
// Call-ID in each state of a call, as golden files for internal/dialog
// (run with LOOKUP_GOLDEN=<dir>; skipped otherwise).
func TestLookupCapture(t *testing.T) {
	dir := os.Getenv("LOOKUP_GOLDEN")
	if dir == "" {
		t.Skip("set LOOKUP_GOLDEN to a directory to record the transcripts")
	}
	stateRE := regexp.MustCompile(`"state":\s*(\d+)`)
	run := func(t *testing.T, s *Stack, prefix string, req func(callID string) string) {
		id := "lookup-golden@127.0.0.1"
		save := func(name, callID string, rep []byte) {
			b := req(callID) + "\n" + string(rep)
			if err := os.WriteFile(filepath.Join(dir, prefix+"-"+name+".txt"), []byte(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		call := func(callID string) []byte {
			rep, err := rpcCall(s.KamRPC, json.RawMessage(req(callID)), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			return rep
		}
		save("notfound", "nosuch@127.0.0.1", call("nosuch@127.0.0.1"))
		callee := StartSipp(t, SippConfig{Name: "callee", Scenario: "callee_ring_2s_wait_bye.xml", Timeout: 30 * time.Second})
		caller := StartSipp(t, SippConfig{Name: "caller", Scenario: "caller_late_ack.xml", Remote: callee.Addr(),
			Proxy: s.Proxy.Addr(), CallID: id, PauseMS: 2000, Timeout: 30 * time.Second})
		seen := map[string]bool{}
		started := false
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			rep := call(id)
			name := "ended"
			if m := stateRE.FindSubmatch(rep); m != nil {
				name = "state" + string(m[1])
				started = true
			} else if !started {
				continue
			}
			if !seen[name] {
				seen[name] = true
				t.Logf("%s %s", time.Now().Format("15:04:05.000"), name)
				save(name, id, rep)
			}
		}
		caller.Wait(t, 30*time.Second)
		callee.Wait(t, 30*time.Second)
		t.Logf("caller %v callee %v", caller.Events(t), callee.Events(t))
	}
	t.Run("kamailio", func(t *testing.T) {
		s := StartStack(t, StackConfig{Limit: "60"})
		run(t, s, "kamailio-5.6.3", func(id string) string {
			b, _ := json.Marshal(id)
			return fmt.Sprintf(`{"jsonrpc":"2.0","method":"dlg.dlg_list","params":[%s],"id":1}`, b)
		})
	})
	for _, v := range opensipsVersions {
		t.Run(v, func(t *testing.T) {
			s := startOpenSIPSStack(t, "60", OpenSIPSConfig{Version: v})
			run(t, s, "opensips-"+v, func(id string) string {
				b, _ := json.Marshal(id)
				return fmt.Sprintf(`{"jsonrpc":"2.0","id":"1","method":"dlg_list","params":{"callid":%s}}`, b)
			})
		})
	}
}
