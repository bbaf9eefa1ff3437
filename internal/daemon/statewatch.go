package daemon

import (
	"context"
	"time"

	"github.com/callcontrol/callcontrol/internal/journal"
)

// watchState repairs the state while the daemon runs: a state directory
// that vanished is made again, and while writes fail (or after the
// directory came back) a snapshot is tried every journal.RepairEvery; the
// first that succeeds makes everything durable at once, not at the next
// compaction.
func (d *Daemon) watchState(ctx context.Context) {
	t := time.NewTicker(journal.RepairEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.state.Repair(d.sessions)
		}
	}
}
