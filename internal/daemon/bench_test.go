package daemon

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/journal"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
	"github.com/callcontrol/callcontrol/internal/store"
)

// BenchmarkCallCycle is one postpaid call's init, start and stop through
// what the daemon runs for them, sockets aside: the session manager, the
// state log with sync = no, and the info log lines formatted as in
// production. Its CPU per call moves far less than socket throughput on a
// shared machine, so it is the figure to watch when tuning that path.
func BenchmarkCallCycle(b *testing.B) {
	st, err := journal.Open(b.TempDir(), journal.Options{Store: store.Options{NoSync: true}}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close(nil)
	log := NewStderrLogger(io.Discard, false)
	defer log.Close()
	m := session.NewManager(session.Limits{Limit: 3600, PrepaidLimit: session.NoLimit, SetupTime: time.Hour,
		StaleTimeout: time.Hour, ProxyTimeout: 500 * time.Millisecond}, nil, &dialogtest.Ender[dialog.Target]{}, st, log.Logger)
	defer m.Shutdown()
	sessiontest.CallCycles(b, m)
}
