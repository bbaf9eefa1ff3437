package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/test/harness"
)

// SippConfig describes one sipp endpoint running one call.
type SippConfig struct {
	Name     string // for logs: "caller", "callee"
	Scenario string // file name in scenarios/
	// Remote is host:port that the request URI points at (the callee); ""
	// for an endpoint that waits for a call.
	Remote string
	// Proxy is where requests are sent (sipp -rsa): Kamailio.
	Proxy   string
	Service string // user part of the request URI; default "e2e"
	CallID  string // Call-ID of the call; default sipp's own
	PauseMS int    // length of <pause/> (sipp -d); 0: sipp's default 1000 ms
	// Calls is how many calls to make or take (sipp -m); 0: one. Rate is
	// the caller's calls per second (sipp -r); 0: sipp's default.
	Calls, Rate int
	// Timeout ends sipp with an error if the call has not completed;
	// default 30 s.
	Timeout time.Duration
}

// Sipp is a running sipp on 127.0.0.1:Port.
type Sipp struct {
	*harness.Proc
	Port   int
	events string
}

// Addr is the endpoint's SIP address.
func (s *Sipp) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// StartSipp starts sipp for one call on fixed ports of its own (SIP, control
// and media), so that the proxy's BYE can reach a caller too. A callee
// (Remote == "") is ready when StartSipp returns.
func StartSipp(t testing.TB, cfg SippConfig) *Sipp {
	t.Helper()
	bin := harness.RequireTool(t, "sipp", "sip-tester")
	scen, err := filepath.Abs(filepath.Join("scenarios", cfg.Scenario))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(scen); err != nil {
		t.Fatal(err)
	}
	if cfg.Service == "" {
		cfg.Service = "e2e"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Calls == 0 {
		cfg.Calls = 1
	}
	// A port found free can be taken before sipp binds it (the machine
	// runs other suites): try other ports then.
	for attempt := 1; ; attempt++ {
		s, dir := startSippOnce(t, bin, scen, cfg)
		harness.WaitFor(t, cfg.Name+" sipp port", nil, harness.StartTimeout, func() bool { return s.Exited() || !udpPortFree(s.Port) })
		if s.Exited() && attempt < 3 {
			if b, _ := os.ReadFile(filepath.Join(dir, "errors.log")); strings.Contains(string(b), "Address already in use") {
				t.Logf("%s sipp: port %d taken meanwhile, trying another", cfg.Name, s.Port)
				continue
			}
		}
		if cfg.Remote == "" {
			harness.WaitFor(t, cfg.Name+" sipp port", s.Proc, harness.StartTimeout, func() bool { return !udpPortFree(s.Port) })
		}
		return s
	}
}

// startSippOnce starts sipp on a block of ports found free and returns it
// with its log directory.
func startSippOnce(t testing.TB, bin, scen string, cfg SippConfig) (*Sipp, string) {
	t.Helper()
	dir := harness.ShortDir(t, "cce2e-sipp-"+cfg.Name)
	// sipp binds SIP at base, its control port at base+1, media at base+2
	// and base+4.
	base := freePortBlock(t, 5)
	s := &Sipp{Port: base, events: filepath.Join(dir, "events.log")}
	var args []string
	if cfg.Remote != "" {
		args = append(args, cfg.Remote)
	}
	args = append(args,
		"-sf", scen, "-nostdin", "-m", strconv.Itoa(cfg.Calls),
		"-i", "127.0.0.1", "-p", strconv.Itoa(base),
		"-cp", strconv.Itoa(base+1), "-mp", strconv.Itoa(base+2),
		"-s", cfg.Service,
		"-timeout", strconv.Itoa(int(cfg.Timeout/time.Second))+"s", "-timeout_error",
		"-trace_logs", "-log_file", s.events,
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
	)
	if cfg.Proxy != "" {
		args = append(args, "-rsa", cfg.Proxy)
	}
	if cfg.CallID != "" {
		args = append(args, "-cid_str", cfg.CallID)
	}
	if cfg.Rate > 0 {
		args = append(args, "-r", strconv.Itoa(cfg.Rate))
	}
	if cfg.PauseMS > 0 {
		args = append(args, "-d", strconv.Itoa(cfg.PauseMS))
	}
	t.Cleanup(func() {
		if t.Failed() {
			harness.DumpLog(t, cfg.Name+" sipp messages", filepath.Join(dir, "messages.log"))
			harness.DumpLog(t, cfg.Name+" sipp errors", filepath.Join(dir, "errors.log"))
		}
	})
	s.Proc = harness.StartProc(t, cfg.Name+" sipp", filepath.Join(dir, "sipp.out"), bin, args...)
	return s, dir
}

// Wait waits for sipp to finish its call and fails the test unless the
// scenario completed (sipp exits 0 only then).
func (s *Sipp) Wait(t testing.TB, d time.Duration) {
	t.Helper()
	if err := s.Proc.Wait(d); err != nil {
		t.Errorf("%s: scenario did not complete: %v", s.Name(), err)
	}
}

// Events returns the times of the scenario's "EVENT <name> <sec> <usec>"
// log lines (taken by sipp itself, so they do not depend on how fast the
// test notices).
func (s *Sipp) Events(t testing.TB) map[string]time.Time {
	t.Helper()
	f, err := os.Open(s.events)
	if err != nil {
		t.Fatalf("%s events: %v", s.Name(), err)
	}
	defer f.Close()
	ev := map[string]time.Time{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		i := indexOf(fs, "EVENT")
		if i < 0 || len(fs) < i+4 {
			continue
		}
		sec, err1 := strconv.ParseFloat(fs[i+2], 64)
		usec, err2 := strconv.ParseFloat(fs[i+3], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s events: bad line %q", s.Name(), sc.Text())
		}
		ev[fs[i+1]] = time.Unix(int64(sec), int64(usec)*1000)
	}
	return ev
}

func indexOf(fs []string, s string) int {
	for i, f := range fs {
		if f == s {
			return i
		}
	}
	return -1
}
