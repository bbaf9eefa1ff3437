package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/config"
	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/logfmt"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// noDomainHost is a host without a domain: the default engine never
// applies, whatever the test machine's DNS says.
var noDomainHost = hostEnv{
	hostname: func() (string, error) { return "testhost", nil },
	lookupHost: func(_ context.Context, host string) ([]string, error) {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	},
	lookupAddr: func(_ context.Context, addr string) ([]string, error) {
		return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
	},
}

// fakeHost is a host named name whose resolver knows hosts (name -> address)
// and reverse (address -> names).
func fakeHost(name string, hosts map[string]string, reverse map[string][]string) hostEnv {
	return hostEnv{
		hostname: func() (string, error) { return name, nil },
		lookupHost: func(_ context.Context, host string) ([]string, error) {
			if a, ok := hosts[host]; ok {
				return []string{a}, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		},
		lookupAddr: func(_ context.Context, addr string) ([]string, error) {
			if n, ok := reverse[addr]; ok {
				return n, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
		},
	}
}

// logBuffer collects a daemon's log lines.
type logBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	debug bool // keep debug lines too
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the lines of level that contain every one of words.
func (l *logBuffer) lines(level string, words ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, line := range strings.Split(l.b.String(), "\n") {
		if !strings.Contains(line, " level="+level+" ") {
			continue
		}
		for _, w := range words {
			if !strings.Contains(line, w) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

func (l *logBuffer) logger() *slog.Logger {
	level := slog.LevelInfo
	if l.debug {
		level = slog.LevelDebug
	}
	return slog.New(logfmt.New(l, logfmt.Options{Level: level}))
}

func TestDefaultEngineAddress(t *testing.T) {
	withDomain := fakeHost("cc1.example.test", map[string]string{"cdrtool.example.test": "192.0.2.9"}, nil)
	tests := []struct {
		name       string
		file       string // [CDRTool] section
		host       hostEnv
		wantSource string
		wantAddrs  []string
		wantLog    []string // level, then words of one line
	}{
		{"configured", "[CDRTool]\naddress = rating.example.test\n", withDomain, engineFromConfig,
			[]string{"rating.example.test:9024"}, nil},
		{"empty means none", "[CDRTool]\naddress =\n", withDomain, engineNone, nil,
			[]string{"WARN", "calls the proxy flags prepaid will be refused", "[CDRTool] address is empty", "fix="}},
		{"None means none", "[CDRTool]\naddress = None\n", withDomain, engineNone, nil,
			[]string{"WARN", "calls the proxy flags prepaid will be refused", "[CDRTool] address is empty"}},
		{"absent, the default resolves", "", withDomain, engineFromDefault,
			[]string{"cdrtool.example.test:9024"}, []string{"INFO", "default engine", "engine=cdrtool.example.test:9024"}},
		{"absent, domain from the reverse name", "[CDRTool]\ntimeout = 200\n",
			fakeHost("cc1", map[string]string{"cc1": "192.0.2.1", "cdrtool.example.test": "192.0.2.9"},
				map[string][]string{"192.0.2.1": {"cc1.example.test."}}),
			engineFromDefault, []string{"cdrtool.example.test:9024"}, []string{"INFO", "default engine"}},
		{"absent, the default does not resolve", "", fakeHost("cc1.example.test", nil, nil), engineNone, nil,
			[]string{"WARN", "calls the proxy flags prepaid will be refused", "cdrtool.example.test does not resolve (no such host cdrtool.example.test)", "fix="}},
		{"absent, no domain", "", noDomainHost, engineNone, nil,
			[]string{"WARN", "calls the proxy flags prepaid will be refused", "domain is unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := config.Parse("c.ini", []byte(tt.file), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			var logs logBuffer
			source := applyDefaultEngine(cfg, tt.host, logs.logger(), false)
			if source != tt.wantSource || !slices.Equal(cfg.CDRTool.Addresses, tt.wantAddrs) {
				t.Fatalf("source %q, addresses %q; want %q, %q", source, cfg.CDRTool.Addresses, tt.wantSource, tt.wantAddrs)
			}
			if tt.wantLog != nil {
				if got := logs.lines(tt.wantLog[0], tt.wantLog[1:]...); len(got) != 1 {
					t.Fatalf("want one %s line with %q; log:\n%s", tt.wantLog[0], tt.wantLog[1:], logs.b.String())
				}
			}
			if n := len(logs.lines("WARN")); tt.wantSource != engineNone && n != 0 {
				t.Fatalf("%d warnings with an engine:\n%s", n, logs.b.String())
			}
		})
	}
}

// startLogged starts a daemon on e's files with a logger the test reads.
func (e *env) startLogged(logs *logBuffer) {
	d, err := Start(e.opts, logs.logger())
	if err != nil {
		e.t.Fatal(err)
	}
	e.d = d
	e.t.Cleanup(func() {
		if e.d != nil {
			e.d.Stop()
		}
	})
}

// newEnvLogged is newEnv with the daemon's log kept, and the proxy's
// management socket at kamPath (a fake Kamailio there unless noProxy);
// tune changes the daemon's options before it starts.
func newEnvLogged(t *testing.T, logs *logBuffer, sections string, noProxy bool, tune ...func(*Options)) *env {
	dir := dialogtest.SocketDir(t)
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "run", "socket"), control: filepath.Join(dir, "run", "control")}
	kamPath := filepath.Join(dir, "kam.sock")
	if noProxy {
		// writeConfig reads the path from the fake: make one and close it.
		e.kam = dialogtest.NewKamailio(t, kamPath)
		e.kam.Close()
	} else {
		e.kam = dialogtest.NewKamailio(t, kamPath)
	}
	e.writeConfig("limit = 60", sections)
	e.opts = Options{ConfigDir: dir, RuntimeDir: filepath.Join(dir, "run"), host: noDomainHost}
	for _, f := range tune {
		f(&e.opts)
	}
	e.startLogged(logs)
	return e
}

// checked waits for the start or reload checks to have run.
func (e *env) checked() control.Stats {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	c := e.ctl() // one connection: the server limits them
	for {
		st, err := c.Stats()
		if err != nil {
			e.t.Fatal(err)
		}
		if st.ManagementSocket != nil && st.ManagementSocket.State != control.SocketUnchecked {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("checks not done: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The proxy's management socket is missing and the engine refuses
// connections: one WARNING each, with the cause and the option to fix;
// the daemon runs on, stats show both, and a reload after the fix shows
// them fixed.
func TestStartChecksWarnAndShowInStats(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	engineAddr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	var logs logBuffer
	e := newEnvLogged(t, &logs, "[CDRTool]\naddress = "+engineAddr+"\ntimeout = 300\n", true)
	st := e.checked()

	if m := st.ManagementSocket; m.State != control.SocketFailing || m.Cause != "no such file" || m.Path != e.kam.Path() || m.Proxy != "kamailio" {
		t.Fatalf("management socket %+v", m)
	}
	if len(st.Engines) != 1 || st.Engines[0] != (control.EngineStatus{Address: engineAddr, State: control.EngineUnreachable, Cause: "connection refused"}) {
		t.Fatalf("engines %+v", st.Engines)
	}
	if st.EngineSource != engineFromConfig {
		t.Fatalf("engine source %q", st.EngineSource)
	}
	if w := logs.lines("WARN", "management socket", "cause=\"no such file\"", "[Kamailio] socket_path"); len(w) != 1 {
		t.Fatalf("management socket warning lines %q; log:\n%s", w, logs.b.String())
	}
	if w := logs.lines("WARN", "rating engine", "engine="+engineAddr, "cause=\"connection refused\"", "[CDRTool] address"); len(w) != 1 {
		t.Fatalf("engine warning lines %q; log:\n%s", w, logs.b.String())
	}
	if w := logs.lines("WARN"); len(w) != 2 {
		t.Fatalf("want exactly the two warnings:\n%s", strings.Join(w, "\n"))
	}

	// The daemon runs on: a prepaid call fails closed, with its cause.
	if got := e.call(strings.Replace(initReq("p1", "alice"), "sip_application: audio", "prepaid: true", 1)); got != "Error" {
		t.Fatalf("prepaid call with the engine down: %q", got)
	}
	if st, _ := e.ctl().Stats(); st.PrepaidRefused != 1 {
		t.Fatalf("prepaid refused %d", st.PrepaidRefused)
	}
	if l := logs.lines("ERROR", "prepaid calls refused", "callid=p1", "connection refused"); len(l) != 1 {
		t.Fatalf("refusal ERROR lines %q; log:\n%s", l, logs.b.String())
	}
	if l := logs.lines("ERROR", "did not answer in time"); len(l) != 0 {
		t.Fatalf("a refused connection logged as a timeout: %q", l)
	}

	// Fixed: the proxy is up, the engine listens. A reload checks again.
	kam := dialogtest.NewKamailio(t, e.kam.Path())
	eng, err := net.Listen("tcp", engineAddr)
	if err != nil {
		t.Fatalf("listen on %s again: %v", engineAddr, err)
	}
	defer eng.Close()
	go func() {
		for {
			c, err := eng.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	checkedBefore := st.ManagementSocket.Checked
	if _, err := e.ctl().Reload(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	c := e.ctl() // one connection: the server limits them
	for {
		st, err = c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.ManagementSocket.Checked.After(checkedBefore) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no check after the reload: %+v", st.ManagementSocket)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := st.ManagementSocket; m.State != control.SocketAnswering || !strings.HasPrefix(m.Version, "kamailio") || m.Cause != "" {
		t.Fatalf("management socket after the fix %+v", m)
	}
	if st.Engines[0].State != control.EngineConnected {
		t.Fatalf("engine after the fix %+v", st.Engines)
	}
	if kam.Probes() < 1 || kam.Len() != 0 {
		t.Fatalf("probes %d, dialog requests %d", kam.Probes(), kam.Len())
	}
}

// A Kamailio host with the packaged OpenSIPS section: the check says the
// socket belongs to the other proxy.
func TestStartCheckNamesTheWrongProxy(t *testing.T) {
	var logs logBuffer
	dir := dialogtest.SocketDir(t)
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "run", "socket"), control: filepath.Join(dir, "run", "control")}
	e.kam = dialogtest.NewKamailio(t, filepath.Join(dir, "kam.sock"))
	cfg := fmt.Sprintf("[CallControl]\nsocket = %s\ngroup = nogroup\nstate_dir = %s\nsync = no\n[OpenSIPS]\nsocket_path = %s\n[CDRTool]\naddress =\n",
		e.sock, filepath.Join(dir, "state"), e.kam.Path())
	if err := os.WriteFile(filepath.Join(dir, "config.ini"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e.opts = Options{ConfigDir: dir, RuntimeDir: filepath.Join(dir, "run"), host: noDomainHost}
	e.startLogged(&logs)
	st := e.checked()
	if m := st.ManagementSocket; m.State != control.SocketFailing || !strings.Contains(m.Cause, "does not know version") {
		t.Fatalf("management socket %+v", m)
	}
	if w := logs.lines("WARN", "management socket", "[Kamailio] or [OpenSIPS] section that matches"); len(w) != 1 {
		t.Fatalf("log:\n%s", logs.b.String())
	}
	// No engine at all: said at start, and a flagged prepaid call is refused.
	if w := logs.lines("WARN", "calls the proxy flags prepaid will be refused"); len(w) != 1 {
		t.Fatalf("log:\n%s", logs.b.String())
	}
	if st.EngineSource != engineNone || len(st.Engines) != 0 {
		t.Fatalf("engines %q %+v", st.EngineSource, st.Engines)
	}
	prepaid := "init\nruri: sip:0031650@example.com\ndiverter: None\nsourceip: 10.0.0.1\ncallid: c1\nfrom: <sip:alice@example.com>;tag=x\nfromtag: ft\nprepaid: true\ncall_limit: 0\ncall_token: None"
	if got := e.call(prepaid); got != "Error" {
		t.Fatalf("flagged prepaid without an engine: %q", got)
	}
	if got := e.call(strings.Replace(strings.Replace(prepaid, "prepaid: true", "prepaid: unknown", 1), "c1", "c2", 1)); got != "No limit" {
		t.Fatalf("unknown without an engine: %q, want today's rule", got)
	}
	if st, _ := e.ctl().Stats(); st.PrepaidRefused != 1 {
		t.Fatalf("prepaid refused %d", st.PrepaidRefused)
	}
}

// A reload that would turn rating off keeps the engines until a restart,
// and says only that: no warning that prepaid calls will be refused.
func TestReloadWithoutEngineKeepsTheEngineInForce(t *testing.T) {
	eng := ratingtest.New(t)
	var logs logBuffer
	e := newEnvLogged(t, &logs, "[CDRTool]\naddress = "+eng.Addr()+"\n", false)
	e.checked()
	e.writeConfig("limit = 60", "[CDRTool]\naddress =\n")
	if _, err := e.ctl().Reload(); err != nil {
		t.Fatal(err)
	}
	if w := logs.lines("WARN", "changes only at restart", "[CDRTool] address"); len(w) != 1 {
		t.Fatalf("log:\n%s", logs.b.String())
	}
	if w := logs.lines("WARN", "prepaid will be refused"); len(w) != 0 {
		t.Fatalf("untrue warning: %q", w)
	}
	st, err := e.ctl().Stats()
	if err != nil || st.EngineSource != engineFromConfig || len(st.Engines) != 1 || st.Engines[0].Address != eng.Addr() {
		t.Fatalf("stats %+v %v", st, err)
	}
}

// A proxy that starts after the daemon: the failed check is repeated
// quietly until the socket answers, so stats turns true without a reload,
// and the log has one warning and one recovery line.
func TestManagementSocketRecheckedUntilItAnswers(t *testing.T) {
	var logs logBuffer
	dir := dialogtest.SocketDir(t)
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "run", "socket"), control: filepath.Join(dir, "run", "control")}
	e.kam = dialogtest.NewKamailio(t, filepath.Join(dir, "kam.sock"))
	e.kam.Close() // not there yet
	e.writeConfig("limit = 60", "[CDRTool]\naddress =\n")
	e.opts = Options{ConfigDir: dir, RuntimeDir: filepath.Join(dir, "run"), host: noDomainHost, recheckEvery: 50 * time.Millisecond}
	e.startLogged(&logs)
	st := e.checked()
	if st.ManagementSocket.State != control.SocketFailing {
		t.Fatalf("before the proxy: %+v", st.ManagementSocket)
	}
	// A few quiet rechecks: each one records when it ran.
	c := e.ctl() // one connection: the server limits them
	last, rechecks := st.ManagementSocket.Checked, 0
	for deadline := time.Now().Add(15 * time.Second); rechecks < 3; time.Sleep(20 * time.Millisecond) {
		st, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if m := st.ManagementSocket; m.Checked.After(last) {
			if m.State != control.SocketFailing {
				t.Fatalf("recheck without the proxy: %+v", m)
			}
			last, rechecks = m.Checked, rechecks+1
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rechecks in 15 s, every 50 ms", rechecks)
		}
	}
	kam := dialogtest.NewKamailio(t, e.kam.Path())
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := c.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.ManagementSocket.State == control.SocketAnswering {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not rechecked: %+v", st.ManagementSocket)
		}
	}
	if w := logs.lines("WARN", "management socket"); len(w) != 1 {
		t.Fatalf("warnings %q", w)
	}
	if l := logs.lines("INFO", "proxy management socket answers"); len(l) != 1 {
		t.Fatalf("recovery lines %q", l)
	}
	// Answered once: the rechecks stop, having probed it once.
	for deadline := time.Now().Add(15 * time.Second); e.d.checks.running.Load() != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still rechecking after it answered: %d probes", kam.Probes())
		}
	}
	if n := kam.Probes(); n != 1 {
		t.Fatalf("%d probes of the proxy that answered, want 1", n)
	}
}
