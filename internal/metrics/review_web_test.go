package metrics

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

// Every metric /metrics serves follows Prometheus' naming conventions
// (promlint: counters end in _total, units in base units, help present),
// and the text exposition is one promtool accepts.
func TestReviewMetricsFollowConventions(t *testing.T) {
	m := New("test", func() State {
		return State{Started: time.Unix(1700000000, 0), Engines: []Engine{{Address: "10.0.0.1:9024", State: "connected"}},
			SessionsPending: 1, SessionsInProgress: 2}
	})
	m.Proxy.Observe("init", "Ok", time.Millisecond)
	m.Rating.Observe("10.0.0.1:9024", MaxSessionTime, ResultOK, time.Millisecond)
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, Namespace+"_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		// promtool also lints the go_/process_ collectors; keep ours only.
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, Namespace+"_") {
				t.Errorf("promtool check metrics: %s", line)
			}
		}
	}
}
