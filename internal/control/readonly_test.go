package control_test

import (
	"errors"
	"os"
	"os/user"
	"strconv"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/control/controltest"
)

// TestReadOnlyGroup: a peer refused full access but in control_read_group
// may list and show, and may not end calls, reload or touch debits; each
// refusal is logged with its uid.
func TestReadOnlyGroup(t *testing.T) {
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Fatal(err)
	}
	b := controltest.New(stats, sessionA)
	b.SetDebits(control.DebitInfo{CallID: "d@1", Engine: "old:9024"})
	logs := &lockedBuffer{}
	s := startServerLog(t, "", "", b, logs)
	s.SetAuthorize(func(uid, gid uint32) error { return errors.New("permission denied: not an operator") })
	if err := s.AllowReadOnly(g.Name); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(s.Path()); err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("socket mode with a read-only group: %v %v", fi.Mode(), err)
	}
	c := dial(t, s)
	if _, err := c.Sessions(""); err != nil {
		t.Fatalf("sessions: %v", err)
	}
	if _, err := c.Session("a@1"); err != nil {
		t.Fatalf("session: %v", err)
	}
	if _, err := c.Stats(); err != nil {
		t.Fatalf("stats: %v", err)
	}
	if list, err := c.Debits(); err != nil || len(list) != 1 {
		t.Fatalf("debits: %v %v", list, err)
	}
	for name, do := range map[string]func() error{
		"terminate": func() error { _, err := c.Terminate("a@1"); return err },
		"reload":    func() error { _, err := c.Reload(); return err },
		"retry":     func() error { _, err := c.DebitsRetry(); return err },
		"reroute":   func() error { _, err := c.DebitsReroute("old:9024"); return err },
		"drop":      func() error { _, err := c.DebitsDrop("d@1", true); return err },
	} {
		if err := do(); !errors.Is(err, control.ErrDenied) || !strings.Contains(err.Error(), "read-only group") {
			t.Errorf("%s by a read-only operator: %v", name, err)
		}
	}
	if len(b.Terminated()) != 0 || b.Reloads() != 0 || len(b.Debits()) != 1 {
		t.Fatal("a read-only operator changed something")
	}
	if !strings.Contains(logs.String(), "read-only operator refused") {
		t.Errorf("refusals not logged: %s", logs.String())
	}
}

func TestDebitCommands(t *testing.T) {
	b := controltest.New(stats)
	b.SetDebits(control.DebitInfo{CallID: "d@1", Engine: "old:9024"}, control.DebitInfo{CallID: "d@2", Engine: "x:9024", Configured: true})
	logs := &lockedBuffer{}
	c := dial(t, startServerLog(t, "", "", b, logs))
	if _, err := c.DebitsDrop("d@1", false); err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Fatalf("drop without confirmation: %v", err)
	}
	if r, err := c.DebitsReroute("old:9024"); err != nil || r.Affected != 1 {
		t.Fatalf("reroute: %+v %v", r, err)
	}
	if r, err := c.DebitsDrop("d@2", true); err != nil || r.Affected != 1 {
		t.Fatalf("drop: %+v %v", r, err)
	}
	if _, err := c.DebitsDrop("d@2", true); !errors.Is(err, control.ErrNotFound) {
		t.Fatalf("drop of nothing: %v", err)
	}
	l := logs.String()
	for _, want := range []string{"operator rerouted owed debits", "operator dropped owed debits", "callid=d@2", "uid=" + strconv.Itoa(os.Getuid())} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q: %s", want, l)
		}
	}
}
