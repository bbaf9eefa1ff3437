package session_test

import (
	"fmt"
	"testing"
	"time"

	. "github.com/callcontrol/callcontrol/internal/session"
)

// BenchmarkCounts100k is Manager.Counts over 100,000 calls: what every
// `callcontrol stats`, /api/v1/stats (the web page asks every 2 s, and
// /api/v1/sessions once more for X-Total-Count) and Prometheus scrape
// pays, as it walks the table to split pending from in progress.
func BenchmarkCounts100k(b *testing.B) {
	now := time.Now()
	sessions := make([]*Session, 100_000)
	for i := range sessions {
		sessions[i] = &Session{CallID: fmt.Sprintf("%08x@bench", i), Party: fmt.Sprintf("sip:u%d@example.com", i),
			RURI: "sip:d@example.com", Limit: 3600, Cap: NoLimit, Created: now, Answered: now, EndAt: now.Add(time.Hour)}
	}
	m := benchManager()
	m.Restore(sessions)
	defer m.Shutdown()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		m.Counts()
	}
}
