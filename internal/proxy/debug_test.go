package proxy_test

import (
	"bytes"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/daemon"
	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/logfmt"
	"github.com/callcontrol/callcontrol/internal/proxy"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDebugWireLine: with --debug, each request is logged as the proxy
// sent it (CR LF and all, escaped), with the reply and took_ms.
func TestDebugWireLine(t *testing.T) {
	var logged lockedBuffer
	log := slog.New(logfmt.New(&logged, logfmt.Options{Level: slog.LevelDebug, NoTime: true}))
	path := filepath.Join(t.TempDir(), "socket")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	m := session.NewManager(limits(60), nil, &dialogtest.Ender[dialog.Target]{}, sessiontest.NewJournal(), log)
	srv := proxy.NewServer(ln, daemon.ProxyHandler(m, true, log), log, true)
	go srv.Serve()
	defer m.Shutdown()
	defer srv.Close()

	if got := roundTrip(t, dial(t, path), "\r\nStop\r\ncallid: abc@1\r\nX-Unknown:  kept \r\n\r\n"); got != "Not found" {
		t.Fatalf("reply %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logged.String(), "proxy request") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	line := logged.String()
	for _, want := range []string{`msg="proxy request"`, `callid=abc@1`,
		`request="Stop\r\ncallid: abc@1\r\nX-Unknown:  kept \r\n\r\n"`, `reply="Not found"`, ` took_ms=`} {
		if !strings.Contains(line, want) {
			t.Errorf("debug line lacks %s:\n%s", want, line)
		}
	}
}
