package journal

import (
	"fmt"
	"time"

	"github.com/callcontrol/callcontrol/internal/session"
)

// RepairEvery is how often a state that is not durable is retried (the
// daemon calls Repair): a snapshot of everything held in memory, written
// as soon as the disk takes it again.
const RepairEvery = 200 * time.Millisecond

// Repair recreates a vanished state directory and, while the state is not
// durable, tries a snapshot. It says whether the state is durable after.
func (j *Journal) Repair(m *session.Manager) error {
	j.repairMu.Lock()
	defer j.repairMu.Unlock()
	if j.log.Vanished() {
		j.logger.Error("state: the state directory or its current segment was removed: making it again and writing everything held in memory",
			"dir", j.dir)
		if err := j.log.Recreate(); err != nil {
			j.logger.Error("state: cannot make the state directory again", "err", err)
			return err
		}
	}
	since, _, cause := j.log.Fault()
	if since.IsZero() {
		return nil
	}
	if err := j.snapshot(m); err != nil {
		j.logger.Debug("state: snapshot retry failed", "err", err)
		return fmt.Errorf("not durable since %s: %v; last snapshot attempt: %w", since.UTC().Format(time.RFC3339), cause, err)
	}
	if since, _, cause := j.log.Fault(); !since.IsZero() {
		return fmt.Errorf("not durable since %s: %v", since.UTC().Format(time.RFC3339), cause)
	}
	return nil
}

// finalSnapshot writes the snapshot of a clean stop, first making a
// vanished state directory again. Its error names what was not saved.
func (j *Journal) finalSnapshot(m *session.Manager) error {
	if err := j.Repair(m); err != nil {
		// repair retried the snapshot of a state not durable: it failed.
		pending, inProgress, _ := m.Counts()
		err = fmt.Errorf("state: the final snapshot failed; %d calls (%d answered) and %d owed debits held only in memory are not saved: %w",
			pending+inProgress, inProgress, j.DebitsWaiting(), err)
		j.logger.Error(err.Error())
		return err
	}
	if since, _, _ := j.log.Fault(); !since.IsZero() {
		return fmt.Errorf("state: not durable at stop") // repair said otherwise: cannot happen
	}
	start := time.Now()
	if err := j.snapshot(m); err != nil {
		err = fmt.Errorf("state: the final snapshot failed (the log still holds every call, and the next start replays it): %w", err)
		j.logger.Error(err.Error())
		return err
	}
	j.logger.Debug("state: snapshot written", "took_ms", time.Since(start).Milliseconds())
	return nil
}

// notDurable makes a Save fail while the state is not durable, for
// state_failure = refuse: also when the write itself seemed to succeed,
// as into a segment whose directory was removed.
func (j *Journal) notDurable(wait session.Wait) session.Wait {
	return func(by time.Time) error {
		err := wait(by)
		if err != nil {
			return err
		}
		return j.log.NotDurable()
	}
}
