package main

import (
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/control/controltest"
)

// `debits reroute` of an engine nothing is owed to (a typo) did nothing:
// it must not print "0 debits owed to ... moved" and exit 0.
func TestDebitsRerouteOfNothingIsNotSuccess(t *testing.T) {
	b := controltest.New(someStats, alice, bob)
	b.SetDebits(owed...)
	sock := startDaemon(t, b)
	code, out, errOut := runCLI("--socket", sock, "debits", "reroute", "10.0.0.99:9024")
	if code == exitOK || strings.Contains(out, "moved") || !strings.Contains(errOut, "no debit owed to engine 10.0.0.99:9024") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}
