// Package testuser makes throwaway local users for tests that check what
// another uid is refused, and runs the test binary as one of them. It
// needs root (CI runs as root); elsewhere the test is skipped, or fails
// when CI=true, since a skipped check must not pass unseen in CI.
package testuser

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// User is a local user made for one test and deleted after it.
type User struct {
	Name     string
	UID, GID uint32
	Groups   []uint32 // supplementary groups
}

// Create adds a user (no home, no login shell) whose supplementary groups
// are groups, and deletes it when the test ends.
func Create(t testing.TB, groups ...string) *User {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("testuser: this test needs root to create a user")
		}
		t.Skip("testuser: needs root to create a user")
	}
	var b [4]byte
	rand.Read(b[:])
	name := "cct" + hex.EncodeToString(b[:])
	args := []string{"--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group"}
	if len(groups) > 0 {
		args = append(args, "--groups", strings.Join(groups, ","))
	}
	args = append(args, name)
	// Other tests may be adding users at the same moment: /etc/passwd's
	// lock is then busy for a moment.
	var out []byte
	var err error
	for range 20 {
		if out, err = exec.Command("useradd", args...).CombinedOutput(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		for range 20 {
			if exec.Command("userdel", name).Run() == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("userdel %s failed", name)
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	id := func(s string) uint32 {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		return uint32(n)
	}
	tu := &User{Name: name, UID: id(u.Uid), GID: id(u.Gid)}
	gids, err := u.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gids {
		tu.Groups = append(tu.Groups, id(g))
	}
	return tu
}

// Command runs a copy of the test binary as u (the original may sit in a
// directory only root can enter) with args, e.g. "-test.run=^TestHelper$",
// and the environment variable helperVar set to helperValue.
func (u *User) Command(t testing.TB, helperVar, helperValue string, args ...string) *exec.Cmd {
	t.Helper()
	dir, err := os.MkdirTemp("", "testuser")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(self))
	copyFile(t, self, bin)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), helperVar+"="+helperValue)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups}}
	return cmd
}

// OpenPath makes every directory above path enterable by other users,
// as an installed daemon's runtime directory is.
func OpenPath(t testing.TB, path string) {
	t.Helper()
	for dir := filepath.Dir(path); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o005 != 0o005 {
			if err := os.Chmod(dir, fi.Mode().Perm()|0o005); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func copyFile(t testing.TB, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
