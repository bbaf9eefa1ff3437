package main

import (
	"os"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/testuser"
)

func TestMain(m *testing.M) {
	testuser.ServeImpostor()
	os.Exit(m.Run())
}

// Another user's socket in place of the control socket (a runtime
// directory others can write): the CLI refuses it and prints none of its
// answers.
func TestImpostorRefusedByCLI(t *testing.T) {
	path := testuser.StartImpostor(t, `{"ok":true,"sessions":[{"call_id":"forged@impostor"}]}`)
	code, out, errOut := runCLI("--socket", path, "sessions")
	if code != exitUnreachable || strings.Contains(out, "forged") || !strings.Contains(errOut, "served by uid 65534") ||
		!strings.Contains(errOut, "not trusting its answers") {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
}
