package control_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/testuser"
)

// In a runtime directory others can write, another user may put its own
// socket where the control socket should be: the client must not show
// that process's answers as the daemon's.
func TestImpostorControlSocketRefused(t *testing.T) {
	path := testuser.StartImpostor(t, `{"ok":true,"stats":{"sessions":{"in-progress":0},"version":"impostor"}}`)
	c, err := control.Dial(path, 5*time.Second)
	var untrusted *control.UntrustedError
	if !errors.As(err, &untrusted) || untrusted.UID != 65534 || !strings.Contains(err.Error(), "served by uid 65534") {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial of an impostor's socket: %v", err)
	}
}
