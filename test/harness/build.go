package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// built holds the binaries Main built, or why it could not; set before any
// test runs, read-only afterwards.
var built struct {
	daemon, cli string
	err         error
}

// Build says how Main builds the binaries.
type Build struct {
	// Race builds them with the race detector (slower, and it finds races
	// the daemon's unit tests cannot reach).
	Race bool
}

// Main is the TestMain of a suite that runs the daemon: it builds
// ./cmd/callcontrold and ./cmd/callcontrol once into a temporary directory
// ($CALLCONTROLD names a prebuilt daemon instead, with the CLI beside it as
// make build leaves them), runs the tests and exits. A failed build fails
// each test that asks for a binary.
func Main(m *testing.M, b Build) {
	dir, err := os.MkdirTemp("", "cc-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	built.daemon, built.cli, built.err = build(dir, b)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(dir string, b Build) (daemon, cli string, err error) {
	if p := os.Getenv("CALLCONTROLD"); p != "" {
		return p, filepath.Join(filepath.Dir(p), "callcontrol"), nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	args := []string{"build"}
	if b.Race {
		args = append(args, "-race")
	}
	args = append(args, "-o", dir+"/", "./cmd/callcontrold", "./cmd/callcontrol")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build ./cmd/callcontrold ./cmd/callcontrol: %v\n%s", err, out)
	}
	return filepath.Join(dir, "callcontrold"), filepath.Join(dir, "callcontrol"), nil
}

// moduleRoot is the directory of go.mod above the working directory (the
// test's package directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the test's directory")
		}
		dir = up
	}
}

// DaemonBin is the callcontrold Main built; it fails the test if there is
// none.
func DaemonBin(t testing.TB) string {
	t.Helper()
	if built.err != nil || built.daemon == "" {
		t.Fatalf("no callcontrold: %v (is harness.Main the suite's TestMain?)", built.err)
	}
	return built.daemon
}

// CLIBin is the callcontrol CLI built with the daemon.
func CLIBin(t testing.TB) string {
	t.Helper()
	DaemonBin(t)
	return built.cli
}
