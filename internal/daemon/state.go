package daemon

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
)

const (
	sessionPrefix  = "s/"
	askedPrefix    = "a/" // engine asked at init, answer not yet settled
	atAnswerPrefix = "w/" // ended while ringing: to end when answered
	// compactEvery bounds how much log a restart replays.
	compactBytes = 64 << 20
	compactEvery = 10 * time.Minute
)

// state is the session manager's journal: the durable log of sessions and
// the debit spool, sharing one log so a session's end and its debit are
// written in one atomic batch.
type state struct {
	log      *store.Log
	restored map[string][]byte
	debits   *debits
	ends     *dialogEnds // dialog end requests the proxy has not confirmed
	logger   *slog.Logger
	noSync   bool

	dir      string
	repairMu sync.Mutex // one repair at a time (statewatch.go)
	refuse   bool       // state_failure = refuse: Save fails while not durable

	mu          sync.Mutex
	lastCompact time.Time
	bytesAt     uint64

	// asked holds the marks of engine questions in flight, for Compact's
	// snapshot: the log alone would lose one staged before a rotation.
	askMu sync.Mutex
	asked map[string][]byte
}

func openState(dir string, noSync bool, onSync func(time.Duration), log *slog.Logger) (*state, error) {
	return openStateWith(dir, store.Options{NoSync: noSync, OnSync: onSync}, log)
}

func openStateWith(dir string, opts store.Options, log *slog.Logger) (*state, error) {
	l, restored, err := store.Open(dir, opts, log)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	return &state{log: l, restored: restored, logger: log, noSync: opts.NoSync, lastCompact: time.Now(), dir: dir,
		asked: make(map[string][]byte), ends: restoreDialogEnds(restored, log)}, nil
}

// restored decodes what was found at start: the sessions, and the engine
// questions whose answer never settled. A record that does not decode is
// reported and skipped.
func (s *state) restoredSessions() (sessions, asked []*session.Session) {
	bad := 0
	for k, v := range s.restored {
		var dst *[]*session.Session
		switch {
		case strings.HasPrefix(k, sessionPrefix):
			dst = &sessions
		case strings.HasPrefix(k, askedPrefix):
			dst = &asked
		default:
			continue
		}
		sess, err := session.Unmarshal(v)
		if err != nil {
			bad++
			continue
		}
		*dst = append(*dst, sess)
	}
	if bad > 0 {
		s.logger.Error("state: some saved sessions could not be read and are lost", "unreadable", bad, "restored", len(sessions))
	}
	s.restored = nil
	return sessions, asked
}

// Asked implements session.Journal.
func (s *state) Asked(sess *session.Session) session.Wait {
	rec := sess.Marshal()
	s.askMu.Lock()
	s.asked[sess.CallID] = rec
	c := s.log.Stage(store.Put(askedPrefix+sess.CallID, rec))
	s.askMu.Unlock()
	if s.noSync {
		// Without fsync a staged batch is written only when waited for:
		// write the mark now (a copy into the page cache), before the
		// question leaves, or a kill -9 during the engine's round trip
		// loses it and the engine's session is never released. Bounded,
		// as a stalled disk must not eat the engine's time.
		c.WaitUntil(time.Now().Add(askedWriteBound))
	}
	return c.WaitUntil
}

// askedWriteBound is the longest an asked mark's write may hold up its
// question with sync = interval or no.
const askedWriteBound = 50 * time.Millisecond

// Settle implements session.Journal.
func (s *state) Settle(callID string) {
	s.settled(callID)
	s.log.Apply(store.Delete(askedPrefix + callID))
}

// settled forgets an asked mark before the op that deletes it is applied,
// so a snapshot has it only if that op lands after the rotation. It says
// whether a mark was in flight.
func (s *state) settled(callID string) bool {
	s.askMu.Lock()
	defer s.askMu.Unlock()
	_, ok := s.asked[callID]
	delete(s.asked, callID)
	return ok
}

// Save implements session.Journal.
func (s *state) Save(sess *session.Session) session.Wait {
	put := store.Put(sessionPrefix+sess.CallID, sess.Marshal())
	var wait session.Wait
	if s.settled(sess.CallID) { // the first save after the engine was asked
		wait = s.log.Stage(put, store.Delete(askedPrefix+sess.CallID)).WaitUntil
	} else {
		wait = s.log.Stage(put).WaitUntil
	}
	if s.refuse {
		return s.notDurable(wait)
	}
	return wait
}

// End implements session.Journal: the session's removal and its debit in
// one batch; the debit is handed to the spool once that batch is durable.
func (s *state) End(callID string, owed *session.Owed) session.Wait {
	return s.end(callID, owed)
}

// end stages the session's removal, with its debit and the ops in with,
// as one batch.
func (s *state) end(callID string, owed *session.Owed, with ...store.Op) session.Wait {
	s.settled(callID) // the delete below also clears a mark restored from disk
	gone := append([]store.Op{store.Delete(sessionPrefix + callID), store.Delete(askedPrefix + callID)}, with...)
	if owed == nil {
		if s.noSync || len(with) > 0 { // noSync: written on the caller's goroutine, cheapest
			// A dialog end request is waited for: an operator's terminate
			// of an unlimited call has no timer to end it again.
			return s.log.Stage(gone...).WaitUntil
		}
		// Nothing is owed: the reply need not wait for an fsync. A crash
		// before this write lands brings the ended call back at restart,
		// where its timer, accounting or housekeeping ends it again, with
		// no debit either way.
		s.log.Apply(gone...)
		return noWait
	}
	return s.debits.owe(*owed, gone...)
}

func noWait(time.Time) error { return nil }

// EndAtAnswer implements session.Journal: the session's removal, its
// release and the order to end it when answered in one batch.
func (s *state) EndAtAnswer(callID string, owed *session.Owed, sess *session.Session) session.Wait {
	return s.end(callID, owed, store.Put(atAnswerPrefix+callID, sess.Marshal()))
}

// DropAtAnswer implements session.Journal.
func (s *state) DropAtAnswer(callID string) {
	s.log.Apply(store.Delete(atAnswerPrefix + callID))
}

// restoredAtAnswer decodes the calls found at start that are to be ended
// when answered. Call it before restoredSessions, which lets go of what
// was restored.
func (s *state) restoredAtAnswer() []*session.Session {
	var out []*session.Session
	for k, v := range s.restored {
		if !strings.HasPrefix(k, atAnswerPrefix) {
			continue
		}
		if sess, err := session.Unmarshal(v); err == nil {
			out = append(out, sess)
		} else {
			s.logger.Error("state: a call to end when answered could not be read", "key", k)
		}
	}
	return out
}

// maybeCompact writes a snapshot when the log has grown or aged.
func (s *state) maybeCompact(m *session.Manager) {
	st := s.log.Stats()
	s.mu.Lock()
	due := st.Bytes-s.bytesAt > compactBytes || time.Since(s.lastCompact) > compactEvery
	s.mu.Unlock()
	if due {
		s.compact(m)
	}
}

// snapshot writes everything held in memory: sessions, asked marks, owed
// debits.
func (s *state) snapshot(m *session.Manager) error {
	return s.log.Compact(func(put func(key string, v []byte)) {
		m.Each(func(sess *session.Session) { put(sessionPrefix+sess.CallID, sess.Marshal()) })
		m.EachAtAnswer(func(sess *session.Session) { put(atAnswerPrefix+sess.CallID, sess.Marshal()) })
		s.askMu.Lock()
		for id, rec := range s.asked {
			put(askedPrefix+id, rec)
		}
		s.askMu.Unlock()
		if s.debits != nil {
			s.debits.dump(put)
		}
		s.ends.dump(put)
	})
}

func (s *state) compact(m *session.Manager) {
	start := time.Now()
	if err := s.snapshot(m); err != nil {
		s.logger.Error("state: snapshot failed", "err", err)
		return
	}
	s.mu.Lock()
	s.lastCompact, s.bytesAt = time.Now(), s.log.Stats().Bytes
	s.mu.Unlock()
	s.logger.Debug("state: snapshot written", "took_ms", time.Since(start).Milliseconds())
}

func (s *state) debitsWaiting() int {
	if s.debits == nil {
		return 0
	}
	return s.debits.waiting()
}

// stopDebits stops delivering debits; those owed stay in the log.
func (s *state) stopDebits() {
	if s.debits != nil {
		s.debits.close()
	}
}

// close leaves a compact snapshot behind for the next start. An error
// says what was not saved: a clean stop that saved nothing must not look
// like one.
func (s *state) close(m *session.Manager) error {
	s.stopDebits()
	var failed error
	if m != nil {
		failed = s.finalSnapshot(m)
	}
	if err := s.log.Close(); err != nil {
		s.logger.Error("state: close failed", "err", err)
		if failed == nil {
			failed = fmt.Errorf("state: close failed: %w", err)
		}
	}
	return failed
}
