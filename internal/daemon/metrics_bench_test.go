package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/journal"
	"github.com/callcontrol/callcontrol/internal/metrics"
	"github.com/callcontrol/callcontrol/internal/proxy"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
)

// BenchmarkCallCycleHandler is BenchmarkCallCycle through the proxy
// handler, as the proxy socket's server calls it: "plain" is the handler
// alone, "counted" adds the per-request Prometheus counting the daemon
// runs. Their difference is what metrics cost the proxy path.
func BenchmarkCallCycleHandler(b *testing.B) {
	for _, counted := range []bool{false, true} {
		name := "plain"
		if counted {
			name = "counted"
		}
		b.Run(name, func(b *testing.B) {
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
			var h proxy.Handler = ProxyHandler(m, true, log.Logger)
			if counted {
				h = countingHandler{h, metrics.New("bench", func() metrics.State { return metrics.State{} }).Proxy}
			}
			callCycles(b, h)
		})
	}
}

func callCycles(b *testing.B, h proxy.Handler) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		id := fmt.Sprintf("%p", &i)
		for pb.Next() {
			i++
			callID := fmt.Sprint(id, "-", i, "@10.0.0.1")
			init := &proxy.Request{Command: "init", CallID: callID, RURI: "sip:0031650222333@example.com", Diverter: "None",
				SourceIP: "10.0.0.1", From: `"Alice" <sip:alice@example.com>;tag=x`, FromTag: "x", Prepaid: "false"}
			if r := h.Handle(init, time.Now()); r != proxy.Limited {
				b.Fatalf("init: %q", r)
			}
			if r := h.Handle(&proxy.Request{Command: "start", CallID: callID, DialogID: "1:2"}, time.Now()); r != proxy.Ok {
				b.Fatalf("start: %q", r)
			}
			if r := h.Handle(&proxy.Request{Command: "stop", CallID: callID}, time.Now()); r != proxy.Ok {
				b.Fatalf("stop: %q", r)
			}
		}
	})
}
