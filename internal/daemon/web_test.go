package daemon

import (
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

const httpLoopback = "[HTTP]\nlisten = 127.0.0.1:0\n"

func (e *env) url(path string) string {
	e.t.Helper()
	addr := e.d.web.addr()
	if addr == "" {
		e.t.Fatal("http listener is off")
	}
	return "http://" + addr + path
}

func (e *env) http(method, path string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url(path), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) answered(id, user string) {
	e.t.Helper()
	if got := e.call(initReq(id, user)); got != "Limited" {
		e.t.Fatalf("init %s: %s", id, got)
	}
	if got := e.call("start\ncallid: " + id + "\ndialogid: 1:2"); got != "Ok" {
		e.t.Fatalf("start %s: %s", id, got)
	}
}

// A terminate through the API ends the dialog at the proxy's management
// socket, and the API says so.
func TestWebTerminateReachesProxy(t *testing.T) {
	e := newEnv(t, "limit = 600", httpLoopback)
	e.answered("web-1", "alice")
	status, body := e.http("GET", "/api/v1/sessions/web-1")
	var s control.SessionInfo
	if status != 200 || json.Unmarshal([]byte(body), &s) != nil || s.State != "in-progress" || s.Remaining <= 0 {
		t.Fatalf("GET: %d %s", status, body)
	}
	status, body = e.http("DELETE", "/api/v1/sessions/web-1")
	if status != 200 || !strings.Contains(body, `"terminated": true`) || !strings.Contains(body, `"outcome": "ended"`) {
		t.Fatalf("DELETE: %d %s", status, body)
	}
	reqs := e.kam.WaitFor(1, 10*time.Second)
	if len(reqs) != 1 || !reqs[0].Valid || reqs[0].Key() != "1:2" {
		t.Fatalf("proxy got %+v", reqs)
	}
	// The fake confirmed it: /metrics counts it once the reply is read.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, m := e.http("GET", "/metrics")
		if strings.Contains(m, "\ncallcontrol_dialog_ends_sent_total 1\n") && strings.Contains(m, "\ncallcontrol_dialog_ends_confirmed_total 1\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dialog end not counted:\n%s", m)
		}
	}
	if status, body = e.http("DELETE", "/api/v1/sessions/web-1"); status != 404 || !strings.Contains(body, `"exit_status": 1`) {
		t.Fatalf("second DELETE: %d %s", status, body)
	}
	if status, body = e.http("GET", "/readyz"); status != 200 {
		t.Fatalf("readyz: %d %s", status, body)
	}
	os.Remove(e.sock)
	if status, body = e.http("GET", "/readyz"); status != 503 || !strings.Contains(body, "proxy socket") {
		t.Fatalf("readyz without the proxy socket: %d %s", status, body)
	}
}

// /metrics after a few calls, read with Prometheus' own parser: the
// families are those of the golden file and the counts are right.
func TestWebMetrics(t *testing.T) {
	eng := ratingtest.New(t)
	for _, a := range []string{"alice", "bob", "carol"} {
		eng.SetAccount(a+"@example.com", ratingtest.Account{Balance: 10})
	}
	eng.SetRate("0031", ratingtest.PerMinute(0.10))
	e := newEnv(t, "limit = 600", httpLoopback+"[CDRTool]\naddress = "+eng.Addr()+"\ntimeout = 300\n")
	e.answered("m-1", "alice")
	e.answered("m-2", "bob")
	e.call(initReq("m-3", "carol"))
	if got := e.call("stop\ncallid: m-2"); got != "Ok" {
		t.Fatal(got)
	}
	// The engine applies the debit before the daemon reads the reply and
	// counts it: wait for the counts, not for the engine. Generously: under
	// CI's repeated runs a send that fails waits out the spool's backoff.
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var status int
		status, body = e.http("GET", "/metrics")
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		counted := strings.Contains(body, `request="debit_balance",result="ok"`) &&
			strings.Contains(body, "\ncallcontrol_debits_delivered_total 1\n") && strings.Contains(body, "\ncallcontrol_debits_waiting 0\n")
		if counted {
			break
		}
		if time.Now().After(deadline) {
			var debits []string
			for _, line := range strings.Split(body, "\n") {
				if strings.Contains(line, "debit") && !strings.HasPrefix(line, "#") {
					debits = append(debits, line)
				}
			}
			t.Fatalf("the debit was not delivered and counted within 30 s:\n%s", strings.Join(debits, "\n"))
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	var names []string
	for name := range families {
		if strings.HasPrefix(name, "callcontrol_") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	golden := filepath.Join("testdata", "metrics.golden")
	got := strings.Join(names, "\n") + "\n"
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("metric names differ from %s (go test -update to rewrite):\ngot:\n%swant:\n%s", golden, got, want)
	}
	for _, runtime := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes"} {
		if families[runtime] == nil {
			t.Errorf("no %s: runtime collectors missing", runtime)
		}
	}

	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f := families[name]
		if f == nil {
			t.Fatalf("no %s", name)
		}
	next:
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		t.Fatalf("no %s%v", name, labels)
		return 0
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"callcontrol_sessions", map[string]string{"state": "in-progress"}, 1},
		{"callcontrol_sessions", map[string]string{"state": "pending"}, 1},
		{"callcontrol_proxy_requests_total", map[string]string{"command": "init", "reply": "Limited"}, 3},
		{"callcontrol_proxy_requests_total", map[string]string{"command": "start", "reply": "Ok"}, 2},
		{"callcontrol_proxy_requests_total", map[string]string{"command": "stop", "reply": "Ok"}, 1},
		{"callcontrol_proxy_request_duration_seconds", map[string]string{"command": "init"}, 3},
		{"callcontrol_rating_requests_total", map[string]string{"engine": eng.Addr(), "request": "debit_balance", "result": "ok"}, 1},
		{"callcontrol_rating_request_duration_seconds", map[string]string{"request": "debit_balance"}, 1},
		{"callcontrol_debits_delivered_total", nil, 1},
		{"callcontrol_debits_waiting", nil, 0},
		{"callcontrol_engines_up", nil, 1},
		{"callcontrol_engines", nil, 1},
		{"callcontrol_state_durable", nil, 0}, // this test runs with sync = no
		{"callcontrol_state_log_write_errors_total", nil, 0},
		{"callcontrol_build_info", map[string]string{"version": Version}, 1},
	} {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Three inits and two answers asked the engine (init, and start with
	// State=Connected for prepaid calls).
	if got := value("callcontrol_rating_requests_total", map[string]string{"request": "max_session_time", "result": "ok"}); got < 3 {
		t.Errorf("max_session_time requests counted: %v, want at least 3", got)
	}
}

// Reload moves the listener to a new address, and a new address that
// cannot be used refuses the reload and keeps the old listener.
func TestWebReloadMovesListener(t *testing.T) {
	e := newEnv(t, "", "")
	if e.d.web.addr() != "" {
		t.Fatal("http on without [HTTP] listen")
	}
	e.writeConfig("", httpLoopback)
	if _, err := e.ctl().Reload(); err != nil {
		t.Fatal(err)
	}
	first := e.d.web.addr()
	if status, _ := e.http("GET", "/healthz"); status != 200 {
		t.Fatal(status)
	}
	e.writeConfig("", httpLoopback+"user = op\npassword_hash = $2a$04$0123456789012345678901uJqMgF5m9cGv8Ub1sQ0aQmQ3o0yXh2y\n")
	if _, err := e.ctl().Reload(); err != nil {
		t.Fatal(err)
	}
	if status, _ := e.http("GET", "/api/v1/stats"); status != 401 {
		t.Fatalf("credentials added by reload not required: %d", status)
	}
	e.writeConfig("", "[HTTP]\nlisten = 127.0.0.2:0\n")
	if _, err := e.ctl().Reload(); err != nil {
		t.Fatal(err)
	}
	second := e.d.web.addr()
	if second == first {
		t.Fatalf("still on %s", first)
	}
	if _, err := http.Get("http://" + first + "/healthz"); err == nil {
		t.Errorf("old address %s still answers", first)
	}
	if status, _ := e.http("GET", "/api/v1/stats"); status != 200 {
		t.Fatalf("new listener: %d", status)
	}
	e.writeConfig("", "[HTTP]\nlisten = 0.0.0.0:0\n")
	if _, err := e.ctl().Reload(); err == nil || !strings.Contains(err.Error(), "reachable from other machines") {
		t.Fatalf("public listen without auth reloaded: %v", err)
	}
	if e.d.web.addr() != second {
		t.Fatal("a refused reload moved the listener")
	}
}
