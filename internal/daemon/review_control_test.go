package daemon

import (
	"os"
	"strings"
	"testing"
)

// control_read_group applies only at start (AllowReadOnly): a reload that
// changes it must name it among the options that need a restart, not
// answer "every change applied" (callcontrol reload exit 0) while its
// members still cannot connect.
func TestReloadOfControlReadGroupIsTrue(t *testing.T) {
	e := newEnv(t, "", "")
	e.writeConfig("control_read_group = nogroup", "")
	restart, err := e.ctl().Reload()
	if err != nil {
		t.Fatal(err)
	}
	named := strings.Contains(strings.Join(restart, " "), "control_read_group")
	fi, err := os.Stat(e.control)
	if err != nil {
		t.Fatal(err)
	}
	applied := fi.Mode().Perm() == 0o666
	if !named && !applied {
		t.Errorf("reload said every change applied (restart needed %q), but control_read_group is not in force: socket mode %v",
			restart, fi.Mode().Perm())
	}
}
