package proxy_test

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/daemon"
	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/proxy"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
)

// startServer serves a fresh session manager on a Unix socket, through
// the daemon's handler unless h is given.
func startServer(t *testing.T, lim session.Limits, h proxy.Handler) (string, *session.Manager) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socket")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	var m *session.Manager
	if h == nil {
		m = session.NewManager(lim, nil, &dialogtest.Ender[dialog.Target]{}, sessiontest.NewJournal(), log)
		h = daemon.ProxyHandler(m, true, log)
	}
	srv := proxy.NewServer(ln, h, log, false)
	go srv.Serve()
	t.Cleanup(func() {
		srv.Close()
		if m != nil {
			m.Shutdown()
		}
	})
	return path, m
}

// TestTranscripts replays testdata/transcripts/*.txt: "> line" is sent
// with "\r\n" (">" alone sends the empty line that ends a request), "< line"
// is an expected reply line, byte for byte, and nothing more may arrive.
func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/transcripts/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			lim := session.Limits{Limit: session.NoLimit, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
				StaleTimeout: time.Hour, ProxyTimeout: 500 * time.Millisecond}
			var steps []string
			for _, line := range strings.Split(string(data), "\n") {
				switch {
				case strings.HasPrefix(line, "#! limit="):
					l := strings.TrimPrefix(line, "#! limit=")
					if l != "None" {
						lim.Limit = atoi(t, l)
					}
				case strings.HasPrefix(line, "#"), line == "":
				default:
					steps = append(steps, line)
				}
			}
			path, _ := startServer(t, lim, nil)
			c := dial(t, path)
			for i := 0; i < len(steps); {
				var req, want bytes.Buffer
				for ; i < len(steps) && strings.HasPrefix(steps[i], ">"); i++ {
					req.WriteString(strings.TrimPrefix(strings.TrimPrefix(steps[i], ">"), " ") + "\r\n")
				}
				for ; i < len(steps) && strings.HasPrefix(steps[i], "<"); i++ {
					want.WriteString(strings.TrimPrefix(strings.TrimPrefix(steps[i], "<"), " ") + "\r\n")
				}
				if err := c.Send(req.String()); err != nil {
					t.Fatal(err)
				}
				got, err := c.ReadFull(want.Len())
				if err != nil {
					t.Fatalf("after %q: %v (got %q)", req.String(), err, got)
				}
				if !bytes.Equal(got, want.Bytes()) {
					t.Fatalf("after %q:\n got %q\nwant %q", req.String(), got, want.String())
				}
				if err := c.Quiet(20 * time.Millisecond); err != nil {
					t.Fatalf("after %q: more than the reply arrived: %v", req.String(), err)
				}
			}
		})
	}
}

func atoi(t *testing.T, s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("bad number %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}
