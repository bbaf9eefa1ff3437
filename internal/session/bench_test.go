package session

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
)

type nopEnder struct{}

func (nopEnder) End(dialog.Target) {}

func benchManager() *Manager {
	return NewManager(Limits{Limit: 3600, PrepaidLimit: NoLimit, SetupTime: time.Hour, StaleTimeout: time.Hour,
		ProxyTimeout: 500 * time.Millisecond}, nil, nopEnder{}, &journal{saved: map[string]*Session{}}, slog.New(slog.DiscardHandler))
}

// BenchmarkCallCycle is one postpaid call's init, start and stop.
func BenchmarkCallCycle(b *testing.B) {
	m := benchManager()
	defer m.Shutdown()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		id := fmt.Sprintf("%p", &i)
		for pb.Next() {
			i++
			callID := fmt.Sprint(id, "-", i)
			r := &InitRequest{CallID: callID, RURI: "sip:0031650222333@example.com", Diverter: "None",
				SourceIP: "10.0.0.1", From: `"Alice" <sip:alice@example.com>;tag=x`, FromTag: "x", Prepaid: "false"}
			if m.Init(r, time.Now()) != ReplyLimited || m.Start(callID, "1:2", time.Now()) != ReplyOk || m.Stop(callID) != ReplyOk {
				b.Fatal("refused")
			}
		}
	})
}

// BenchmarkRestore100k re-arms 100,000 saved sessions, as a start does.
func BenchmarkRestore100k(b *testing.B) {
	now := time.Now()
	recs := make([][]byte, 100_000)
	for i := range recs {
		recs[i] = (&Session{CallID: fmt.Sprintf("%08x@bench", i), Party: fmt.Sprintf("sip:u%d@example.com", i),
			RURI: "sip:d@example.com", Limit: 3600, Cap: NoLimit, Created: now, Answered: now,
			EndAt: now.Add(time.Hour)}).Marshal()
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		sessions := make([]*Session, len(recs))
		for i, r := range recs {
			s, err := Unmarshal(r)
			if err != nil {
				b.Fatal(err)
			}
			sessions[i] = s
		}
		m := benchManager()
		m.Restore(sessions)
		m.Shutdown()
	}
}
