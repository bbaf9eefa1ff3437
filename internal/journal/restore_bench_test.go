package journal

import (
	"fmt"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
)

// BenchmarkRestore100k is the restore's part of a start with 100,000
// answered calls: the state directory opened, and its sessions handed
// out; from a snapshot (a clean stop) and from the log alone (a crash).
func BenchmarkRestore100k(b *testing.B) {
	const n = 100_000
	now := time.Now()
	record := func(i int) (string, []byte) {
		id := fmt.Sprintf("%08x-%04x-held@10.0.%d.%d", i, i&0xffff, i/250%250, i%250)
		s := &session.Session{CallID: id, Party: fmt.Sprintf("sip:user%d@example.com", i%20000),
			RURI: fmt.Sprintf("sip:0031650%06d@example.com", i), Diverter: "None", SourceIP: "10.0.0.1",
			FromTag: fmt.Sprint("x", i), Token: "None", Application: "audio", HasDialog: true,
			Cap: session.NoLimit, Limit: 3600, Created: now, Answered: now, EndAt: now.Add(time.Hour)}
		return sessionPrefix + id, s.Marshal()
	}
	for _, snapshot := range []bool{true, false} {
		b.Run(fmt.Sprintf("snapshot=%v", snapshot), func(b *testing.B) {
			dir := b.TempDir()
			l, _, err := store.Open(dir, store.Options{NoSync: true}, quiet())
			if err != nil {
				b.Fatal(err)
			}
			if snapshot {
				err = l.Compact(func(put func(string, []byte)) {
					for i := range n {
						put(record(i))
					}
				})
			} else {
				var c *store.Commit
				for i := range n {
					c = l.Apply(store.Put(record(i)))
				}
				err = c.Wait()
			}
			if err != nil {
				b.Fatal(err)
			}
			l.Close()
			b.ReportAllocs()
			for b.Loop() {
				j, err := Open(dir, Options{Store: store.Options{NoSync: true}}, quiet())
				if err != nil {
					b.Fatal(err)
				}
				j.RestoredAtAnswer()
				if sessions, _ := j.RestoredSessions(); len(sessions) != n {
					b.Fatalf("restored %d sessions, want %d", len(sessions), n)
				}
				j.Close(nil)
			}
		})
	}
}
