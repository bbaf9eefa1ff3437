package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/callcontrol/callcontrol/internal/session"
)

// stateRepairEvery is how often a state that is not durable is retried: a
// snapshot of everything held in memory, written as soon as the disk
// takes it again.
const stateRepairEvery = 200 * time.Millisecond

// watchState repairs the state while the daemon runs: a state directory
// that vanished is made again, and while writes fail (or after the
// directory came back) a snapshot is tried every stateRepairEvery; the
// first that succeeds makes everything durable at once, not at the next
// compaction.
func (d *Daemon) watchState(ctx context.Context) {
	t := time.NewTicker(stateRepairEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.state.repair(d.sessions)
		}
	}
}

// repair recreates a vanished state directory and, while the state is not
// durable, tries a snapshot. It says whether the state is durable after.
func (s *state) repair(m *session.Manager) error {
	s.repairMu.Lock()
	defer s.repairMu.Unlock()
	if s.log.Vanished() {
		s.logger.Error("state: the state directory or its current segment was removed: making it again and writing everything held in memory",
			"dir", s.dir)
		if err := s.log.Recreate(); err != nil {
			s.logger.Error("state: cannot make the state directory again", "err", err)
			return err
		}
	}
	since, _, cause := s.log.Fault()
	if since.IsZero() {
		return nil
	}
	if err := s.snapshot(m); err != nil {
		s.logger.Debug("state: snapshot retry failed", "err", err)
		return fmt.Errorf("not durable since %s: %v; last snapshot attempt: %w", since.UTC().Format(time.RFC3339), cause, err)
	}
	if since, _, cause := s.log.Fault(); !since.IsZero() {
		return fmt.Errorf("not durable since %s: %v", since.UTC().Format(time.RFC3339), cause)
	}
	return nil
}

// finalSnapshot writes the snapshot of a clean stop, first making a
// vanished state directory again. Its error names what was not saved.
func (s *state) finalSnapshot(m *session.Manager) error {
	if err := s.repair(m); err != nil {
		// repair retried the snapshot of a state not durable: it failed.
		pending, inProgress, _ := m.Counts()
		err = fmt.Errorf("state: the final snapshot failed; %d calls (%d answered) and %d owed debits held only in memory are not saved: %w",
			pending+inProgress, inProgress, s.debitsWaiting(), err)
		s.logger.Error(err.Error())
		return err
	}
	if since, _, _ := s.log.Fault(); !since.IsZero() {
		return fmt.Errorf("state: not durable at stop") // repair said otherwise: cannot happen
	}
	start := time.Now()
	if err := s.snapshot(m); err != nil {
		err = fmt.Errorf("state: the final snapshot failed (the log still holds every call, and the next start replays it): %w", err)
		s.logger.Error(err.Error())
		return err
	}
	s.logger.Debug("state: snapshot written", "took_ms", time.Since(start).Milliseconds())
	return nil
}

// notDurable makes a Save fail while the state is not durable, for
// state_failure = refuse: also when the write itself seemed to succeed,
// as into a segment whose directory was removed.
func (s *state) notDurable(wait session.Wait) session.Wait {
	return func(by time.Time) error {
		err := wait(by)
		if err != nil {
			return err
		}
		if since, _, cause := s.log.Fault(); !since.IsZero() {
			return fmt.Errorf("state not durable since %s: %w", since.UTC().Format(time.RFC3339), cause)
		}
		return nil
	}
}
