package unixsock

import (
	"os"
	"regexp"
	"testing"

	"github.com/callcontrol/callcontrol/internal/testuser"
)

// asUserVar marks a test binary run as a throwaway user by asNonRoot.
const asUserVar = "UNIXSOCK_TEST_AS_USER"

// asNonRoot runs test name again as a throwaway user when the test runs as
// root (as CI does), where what it checks (a refusal) cannot happen, and
// reports whether it did: the caller returns then. Skipping instead left
// the refusal unchecked in every CI run.
func asNonRoot(t *testing.T, name string) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	if os.Getenv(asUserVar) != "" {
		t.Fatal("still root in the child run as another user")
	}
	u := testuser.Create(t)
	out, err := u.Command(t, asUserVar, "1", "-test.run=^"+name+"$", "-test.v").CombinedOutput()
	if err != nil {
		t.Fatalf("%s as uid %d: %v\n%s", name, u.UID, err, out)
	}
	if !regexp.MustCompile(`(?m)^--- PASS: ` + name + ` `).Match(out) {
		t.Fatalf("%s as uid %d did not pass:\n%s", name, u.UID, out)
	}
	return true
}
