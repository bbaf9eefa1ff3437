package session_test

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	. "github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/session/sessiontest"
)

func benchManager() *Manager {
	return NewManager(Limits{Limit: 3600, PrepaidLimit: NoLimit, SetupTime: time.Hour, StaleTimeout: time.Hour,
		ProxyTimeout: 500 * time.Millisecond}, nil, &dialogtest.Ender[dialog.Target]{}, sessiontest.NewJournal(), slog.New(slog.DiscardHandler))
}

// BenchmarkCallCycle is one postpaid call's init, start and stop.
func BenchmarkCallCycle(b *testing.B) {
	m := benchManager()
	defer m.Shutdown()
	sessiontest.CallCycles(b, m)
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
