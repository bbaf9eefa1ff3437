package sessiontest

import (
	"fmt"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/session"
)

// CallCycles runs b.N postpaid calls (init, start, stop) through m from
// parallel goroutines, failing b if any step is refused: the loop behind
// the call-cycle benchmarks.
func CallCycles(b *testing.B, m *session.Manager) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		id := fmt.Sprintf("%p", &i)
		for pb.Next() {
			i++
			callID := fmt.Sprint(id, "-", i, "@10.0.0.1")
			r := &session.InitRequest{CallID: callID, RURI: "sip:0031650222333@example.com", Diverter: "None",
				SourceIP: "10.0.0.1", From: `"Alice" <sip:alice@example.com>;tag=x`, FromTag: "x", Prepaid: "false"}
			if m.Init(r, time.Now()) != session.ReplyLimited || m.Start(callID, "1:2", time.Now()) != session.ReplyOk ||
				m.Stop(callID) != session.ReplyOk {
				b.Fatal("refused")
			}
		}
	})
}
