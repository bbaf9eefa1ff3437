package dialog

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
)

func TestProbe(t *testing.T) {
	tests := []struct {
		name      string
		flavor    Flavor
		setup     func(t *testing.T, path string) // makes the proxy's socket at path
		wait      time.Duration
		want      string // version, or the ProbeError's cause (a prefix)
		wantError bool
	}{
		{"kamailio", Kamailio, func(t *testing.T, p string) { dialogtest.NewKamailio(t, p) }, 10 * time.Second,
			"kamailio 5.6.3", false},
		{"opensips", OpenSIPS, func(t *testing.T, p string) { dialogtest.NewOpenSIPS(t, p) }, 10 * time.Second,
			"OpenSIPS (3.6.8", false},
		{"missing", Kamailio, func(*testing.T, string) {}, 10 * time.Second, "no such file", true},
		{"nobody reads it", OpenSIPS, func(t *testing.T, p string) {
			c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		}, 10 * time.Second, "connection refused", true},
		{"a stream socket", Kamailio, func(t *testing.T, p string) {
			ln, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
		}, 10 * time.Second, "not a datagram socket", true},
		{"mute", Kamailio, func(t *testing.T, p string) { dialogtest.NewKamailio(t, p).SetAnswer(dialogtest.AnswerNone) },
			300 * time.Millisecond, "no answer (the proxy cannot write to", true},
		{"plain text", OpenSIPS, func(t *testing.T, p string) { dialogtest.NewOpenSIPS(t, p).SetAnswer(dialogtest.AnswerPlainText) },
			10 * time.Second, `answered "500 Internal error", not JSON-RPC`, true},
		// The packaged config names OpenSIPS; the host runs Kamailio.
		{"opensips configured, kamailio there", OpenSIPS, func(t *testing.T, p string) { dialogtest.NewKamailio(t, p) },
			10 * time.Second, "answers, but does not know version", true},
		{"kamailio configured, opensips there", Kamailio, func(t *testing.T, p string) { dialogtest.NewOpenSIPS(t, p) },
			10 * time.Second, "answers, but does not know core.version", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := dialogtest.SocketDir(t)
			proxy, local := filepath.Join(dir, "proxy.sock"), filepath.Join(dir, "probe.sock")
			tt.setup(t, proxy)
			ctx, cancel := context.WithTimeout(context.Background(), tt.wait)
			defer cancel()
			version, err := Probe(ctx, tt.flavor, proxy, local)
			if !tt.wantError {
				if err != nil || !strings.HasPrefix(version, tt.want) {
					t.Fatalf("Probe = %q, %v; want %q...", version, err, tt.want)
				}
			} else {
				var pe *ProbeError
				if !errors.As(err, &pe) || !strings.HasPrefix(pe.Cause, tt.want) {
					t.Fatalf("Probe = %q, %v; want a ProbeError %q...", version, err, tt.want)
				}
			}
			if _, err := os.Lstat(local); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the probe's socket is left behind: %v", err)
			}
		})
	}
}

func TestProbePermissionDenied(t *testing.T) {
	if got := sendCause(&net.OpError{Op: "write", Err: os.NewSyscallError("sendto", syscall.EACCES)}); got != "permission denied" {
		t.Fatalf("EACCES: %q", got)
	}
	if os.Geteuid() == 0 {
		return // root passes file permissions: the mapping above is all we can check
	}
	dir := dialogtest.SocketDir(t)
	sub := filepath.Join(dir, "locked")
	os.Mkdir(sub, 0o755)
	// A socket in a directory we may not search.
	other := filepath.Join(sub, "proxy.sock")
	dialogtest.NewKamailio(t, other)
	os.Chmod(sub, 0o000)
	defer os.Chmod(sub, 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Probe(ctx, Kamailio, other, filepath.Join(dir, "probe.sock"))
	var pe *ProbeError
	if !errors.As(err, &pe) || pe.Cause != "permission denied" {
		t.Fatalf("Probe = %v, want permission denied", err)
	}
}

// The probe and a running client use separate sockets: a probe at reload
// does not steal the client's replies.
func TestProbeBesideClient(t *testing.T) {
	dir := dialogtest.SocketDir(t)
	fake := dialogtest.NewKamailio(t, filepath.Join(dir, "proxy.sock"))
	c, err := New(Options{Flavor: Kamailio, ProxySocket: fake.Path(), LocalSocket: filepath.Join(dir, "dialog.sock")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Probe(ctx, Kamailio, fake.Path(), filepath.Join(dir, "probe.sock")); err != nil {
		t.Fatal(err)
	}
	if fake.Probes() != 1 || fake.Len() != 0 {
		t.Fatalf("probes %d, dialog requests %d", fake.Probes(), fake.Len())
	}
	if _, err := os.Lstat(filepath.Join(dir, "dialog.sock")); err != nil {
		t.Fatalf("the client's socket: %v", err)
	}
}

func FuzzParseProbeReply(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","result":"kamailio 5.6.3 (x86_64/linux) ","id":1}`,
		`{"jsonrpc":"2.0","id":"1","result":{"Server":"OpenSIPS (3.6.8 (x86_64/linux))"}}`,
		`{"jsonrpc":"2.0","id":"1","error":{"code":-32601,"message":"Method not found"}}`,
		"500 Internal error\n", `{"id":2,"result":1}`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fl := range []Flavor{Kamailio, OpenSIPS} {
			v, err := parseProbeReply(fl, b, 1)
			if err != nil && v != "" {
				t.Fatalf("version %q with error %v", v, err)
			}
			var pe *ProbeError
			if err != nil && !errors.Is(err, errForeignID) && (!errors.As(err, &pe) || pe.Cause == "") {
				t.Fatalf("error without a cause: %v", err)
			}
		}
	})
}
