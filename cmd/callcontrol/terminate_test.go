package main

import (
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/control/controltest"
)

// TestTerminateSaysWhatHappened: "ended" only when the proxy confirmed,
// and a non-zero exit when the end is asked but not confirmed or refused.
func TestTerminateSaysWhatHappened(t *testing.T) {
	tests := []struct {
		name   string
		ti     control.TerminateInfo
		code   int
		stdout string
		stderr string
	}{
		{"ended", control.TerminateInfo{Outcome: control.TerminateEnded}, exitOK, "ended: the proxy confirmed", ""},
		{"gone", control.TerminateInfo{Outcome: control.TerminateGone, Detail: "the proxy no longer knew the dialog"},
			exitOK, "had already ended: the proxy no longer knew the dialog", ""},
		{"at answer", control.TerminateInfo{Outcome: control.TerminateAtAnswer}, exitOK,
			"is still ringing: it will be ended the moment it is answered", ""},
		{"pending", control.TerminateInfo{Outcome: control.TerminatePending, Detail: "the proxy has not confirmed yet"},
			exitFailed, "asked the proxy to end it, not confirmed yet", ""},
		{"failed", control.TerminateInfo{Outcome: control.TerminateFailed, Detail: "the proxy cannot end this call"},
			exitFailed, "", "the proxy cannot end this call"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := controltest.New(someStats, alice)
			b.SetTerminateOutcome(tt.ti)
			sock := startDaemon(t, b)
			code, out, errOut := runCLI("--socket", sock, "terminate", alice.CallID)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out, errOut, tt.code, tt.stdout, tt.stderr)
			}
			if tt.ti.Outcome != control.TerminateEnded && strings.Contains(out, "ended: the proxy confirmed") {
				t.Fatalf("says ended when the proxy did not confirm: %q", out)
			}
		})
	}
}
