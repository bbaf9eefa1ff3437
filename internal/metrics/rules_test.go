package metrics

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const (
	rulesFile  = "../../docs/prometheus/callcontrol-rules.yml"
	goldenFile = "../daemon/testdata/metrics.golden" // the names /metrics serves
)

// The sample alert rules are valid for Prometheus (promtool, from Debian's
// prometheus package) and use only metrics the daemon serves.
func TestSampleRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	switch {
	case err == nil:
		out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput()
		if err != nil {
			t.Errorf("promtool check rules %s: %v\n%s", rulesFile, err, out)
		}
	case os.Getenv("CI") == "true":
		t.Error("promtool not found: CI checks the sample rules with it (scripts/deps.sh installs Debian's prometheus)")
	default:
		t.Log("promtool not installed: rules not checked by Prometheus (scripts/deps.sh installs it)")
	}

	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, n := range strings.Fields(string(golden)) {
		served[n] = true
	}
	for _, ref := range regexp.MustCompile(`callcontrol_[a-z_]+`).FindAllString(string(rules), -1) {
		name := ref
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if !served[name] {
				name = strings.TrimSuffix(name, suffix)
			}
		}
		if !served[name] {
			t.Errorf("%s uses %s, which %s does not list", filepath.Base(rulesFile), ref, filepath.Base(goldenFile))
		}
	}
}

func TestReplyClasses(t *testing.T) {
	for reply, want := range map[string]string{
		"Ok": "Ok", "Ok\r\n": "Ok", "3600": "limit", "No limit": "No limit", "Limited": "Limited",
		"Call id x does not exist\r\n": "other", "12abc": "other", "": "other", "Not found": "Not found",
	} {
		if got := replies[replyIndex(reply)]; got != want {
			t.Errorf("%q: %s, want %s", reply, got, want)
		}
	}
	for cmd, want := range map[string]string{"init": "init", "stop": "stop", "INIT": "other", "bogus": "other"} {
		if got := commands[commandIndex(cmd)]; got != want {
			t.Errorf("%q: %s, want %s", cmd, got, want)
		}
	}
}
