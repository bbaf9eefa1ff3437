package metrics

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

// Every metric /metrics serves follows Prometheus' naming conventions
// (promlint: counters end in _total, units in base units, help present),
// and the text exposition is one promtool accepts.
func TestMetricsFollowConventions(t *testing.T) {
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
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found: CI needs it (scripts/deps.sh installs Debian's prometheus)")
		}
		t.Skip("promtool not installed (scripts/deps.sh installs Debian's prometheus)")
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

// The sample alert "rating engine down" must fire for an engine that is
// unreachable, and not for one that is merely idle (its connection was
// dropped after a timeout and is reopened by the next prepaid call:
// callcontrol_engines_up counts it out, callcontrol_engine_up says 1).
// promtool test rules evaluates the real rules file.
func TestRatingEngineDownAlertIgnoresIdleEngines(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found (scripts/deps.sh installs Debian's prometheus)")
		}
		t.Skip("promtool not installed")
	}
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	test := `rule_files: [` + rules + `]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'callcontrol_engines{instance="a"}'
        values: '2x10'
      - series: 'callcontrol_engines_up{instance="a"}'
        values: '1x10'
      - series: 'callcontrol_engine_up{instance="a",engine="10.0.0.1:9024"}'
        values: '1x10'
      - series: 'callcontrol_engine_up{instance="a",engine="10.0.0.2:9024"}'
        values: '1x10'
      - series: 'callcontrol_engines{instance="b"}'
        values: '2x10'
      - series: 'callcontrol_engines_up{instance="b"}'
        values: '1x10'
      - series: 'callcontrol_engine_up{instance="b",engine="10.0.0.1:9024"}'
        values: '1x10'
      - series: 'callcontrol_engine_up{instance="b",engine="10.0.0.2:9024"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: CallcontrolRatingEngineDown
        exp_alerts:
          - exp_labels: {severity: critical, instance: b, engine: "10.0.0.2:9024"}
            exp_annotations:
              summary: "Rating engine 10.0.0.2:9024 unreachable from b"
              description: "Prepaid calls are refused or fail over; debits wait on disk until the engine is back."
`
	f := filepath.Join(t.TempDir(), "engine_down_test.yml")
	if err := os.WriteFile(f, []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

// The help of the dialog end counters says what they count (the daemon
// adds dialog.Counts: Retried = refused sends + timeouts; Failed =
// Refused + Unendable): timeouts are retried, not failed, and nothing is
// given up.
func TestDialogEndCountersHelpSaysWhatTheyCount(t *testing.T) {
	help := map[string]string{}
	for _, m := range metricList() {
		s := m.desc.String()
		name := s[strings.Index(s, `fqName: "`)+9:]
		name = name[:strings.Index(name, `"`)]
		h := s[strings.Index(s, `help: "`)+7:]
		help[name] = h[:strings.Index(h, `"`)]
	}
	retried, failed := help[Namespace+"_dialog_ends_retried_total"], help[Namespace+"_dialog_ends_failed_total"]
	if !strings.Contains(retried, "no answer") {
		t.Errorf("retried: %q does not say it counts requests sent again for want of an answer", retried)
	}
	if strings.Contains(failed, "in time") || strings.Contains(failed, "given up") {
		t.Errorf("failed: %q counts what it does not (timeouts are retried; nothing is given up)", failed)
	}
}
