// Package journal is the session manager's durable memory: it implements
// session.Journal over one store.Log, shared with the debit spool so that a
// session's end, its debit and the request to end its dialog are written
// in one atomic batch.
//
// It owns the layout of the log (the key prefixes below), the marks of
// engine questions in flight, the choice of durability for each write,
// the snapshots that compact the log, and the repair of a state directory
// that failed. The daemon opens it, hands it to the session manager and
// closes it.
package journal

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/internal/debit"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
)

// The keys of the log, by prefix. debit.Prefix ("d/") keys the debits
// owed, dialogEndPrefix ("e/", dialogends.go) the dialog end requests the
// proxy has not confirmed. Their records are what old state directories
// hold: never change a prefix or an encoding without reading the old one.
const (
	sessionPrefix  = "s/" // a call in the table: session.Session.Marshal
	askedPrefix    = "a/" // engine asked at init, answer not yet settled
	atAnswerPrefix = "w/" // ended while ringing: to end when answered
)

// A snapshot is written when the log has grown by compactBytes since the
// last one, or compactEvery after it: together they bound how much log a
// restart replays.
const (
	compactBytes = 64 << 20
	compactEvery = 10 * time.Minute
)

// Journal implements session.Journal. Safe for concurrent use.
type Journal struct {
	log      *store.Log
	restored map[string][]byte // the records found at start other than the sessions
	debits   *debits
	ends     *DialogEnds // dialog end requests the proxy has not confirmed
	logger   *slog.Logger
	noSync   bool
	refuse   bool // state_failure = refuse: Save fails while not durable

	// restoredSessions are the sessions found at start, decoded as their
	// records were read (restoring.go); unreadable counts those whose
	// record does not decode. RestoredSessions hands them out.
	restoredSessions map[string]*session.Session
	unreadable       int

	dir      string
	repairMu sync.Mutex // one repair at a time (repair.go)

	mu          sync.Mutex
	lastCompact time.Time
	bytesAt     uint64

	// asked holds the marks of engine questions in flight, for a
	// snapshot: the log alone would lose one staged before a rotation.
	askMu sync.Mutex
	asked map[string][]byte

	snapshotPut func() // tests: called after each session a snapshot puts

	// unknown are the records of kinds this version does not know, kept
	// through snapshots as they were found.
	unknown map[string][]byte

	// records are buffers to encode a session into for Save: the store
	// copies the record when it is staged, so the buffer is free again
	// at once, and the proxy's path allocates none.
	records sync.Pool
}

// Options are the journal's durability.
type Options struct {
	Store store.Options
	// RefuseNotDurable (state_failure = refuse) makes a Save's wait fail
	// while the state is not durable, also when its own write seemed to
	// succeed.
	RefuseNotDurable bool
}

// Open opens the state directory dir and reads what it holds; the
// Restored methods hand it out.
func Open(dir string, opts Options, log *slog.Logger) (*Journal, error) {
	r := newRestoring()
	l, err := store.OpenReplay(dir, opts.Store, log, r.apply)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	restored := r.records
	return &Journal{log: l, restored: restored, restoredSessions: r.sessions, unreadable: len(r.unreadable),
		logger: log, noSync: opts.Store.NoSync, refuse: opts.RefuseNotDurable,
		lastCompact: time.Now(), dir: dir, asked: make(map[string][]byte), ends: restoreDialogEnds(restored, log),
		unknown: unknownRecords(restored, log)}, nil
}

// unknownRecords picks the records of a kind this version does not know
// (written by a newer one, before a downgrade): reported, and kept as they
// are through snapshots, for the version that wrote them.
func unknownRecords(restored map[string][]byte, log *slog.Logger) map[string][]byte {
	var unknown map[string][]byte
	for k, v := range restored {
		switch {
		case strings.HasPrefix(k, sessionPrefix), strings.HasPrefix(k, askedPrefix), strings.HasPrefix(k, atAnswerPrefix),
			strings.HasPrefix(k, dialogEndPrefix), strings.HasPrefix(k, debit.Prefix):
			continue
		}
		if unknown == nil {
			unknown = make(map[string][]byte)
		}
		unknown[k] = v
	}
	if len(unknown) > 0 {
		keys := make([]string, 0, min(len(unknown), 10))
		for k := range unknown {
			if len(keys) == cap(keys) {
				break
			}
			keys = append(keys, k)
		}
		log.Error("state: records of a kind this version does not know (written by a newer version?) are kept as they are, unused",
			"count", len(unknown), "keys", strings.Join(keys, " "))
	}
	return unknown
}

// RestoredSessions hands out what was found at start: the sessions
// (decoded as they were read), and the engine questions whose answer never
// settled. A record that does not decode is reported and skipped. Call it
// last of the Restored methods: it lets go of what was restored.
func (j *Journal) RestoredSessions() (sessions, asked []*session.Session) {
	bad := j.unreadable
	if len(j.restoredSessions) > 0 {
		sessions = make([]*session.Session, 0, len(j.restoredSessions))
	}
	for _, sess := range j.restoredSessions {
		sessions = append(sessions, sess)
	}
	for k, v := range j.restored {
		if !strings.HasPrefix(k, askedPrefix) {
			continue
		}
		sess, err := session.Unmarshal(v)
		if err != nil {
			bad++
			continue
		}
		asked = append(asked, sess)
	}
	if bad > 0 {
		j.logger.Error("state: some saved sessions could not be read and are lost", "unreadable", bad, "restored", len(sessions))
	}
	// A mark beside its session's record is covered by that session's own
	// debit: settled here, as the session manager may end the session at
	// once (its time passed) and would then find the mark alone and owe
	// a second debit, a 0 s release, for the same Call-ID.
	alone := asked[:0]
	for _, a := range asked {
		if _, ok := j.restoredSessions[a.CallID]; ok { // its last record decoded
			j.Settle(a.CallID)
			continue
		}
		alone = append(alone, a)
	}
	j.restored, j.restoredSessions, j.unreadable = nil, nil, 0
	return sessions, alone
}

// RestoredAtAnswer decodes the calls found at start that are to be ended
// when answered. Call it before RestoredSessions.
func (j *Journal) RestoredAtAnswer() []*session.Session {
	var out []*session.Session
	for k, v := range j.restored {
		if !strings.HasPrefix(k, atAnswerPrefix) {
			continue
		}
		if sess, err := session.Unmarshal(v); err == nil {
			out = append(out, sess)
		} else {
			j.logger.Error("state: a call to end when answered could not be read", "key", k)
		}
	}
	return out
}

// Every method below chooses how its batch reaches the log. A method that
// returns a session.Wait stages its batch (store.Log.Stage): with sync =
// interval or no, the caller's Wait usually copies it into the log itself,
// sparing the proxy's path a hand-off to the writer goroutine; the store
// writes it anyway within the flusher's interval if nobody waits.
// A method that returns nothing applies its batch (store.Log.Apply): the
// writer goroutine writes it.

// Asked implements session.Journal.
func (j *Journal) Asked(sess *session.Session) session.Wait {
	rec := sess.Marshal()
	j.askMu.Lock()
	j.asked[sess.CallID] = rec
	c := j.log.Stage(store.Put(askedPrefix+sess.CallID, rec))
	j.askMu.Unlock()
	// The mark is in the page cache before the question leaves, or a
	// kill -9 during the engine's round trip loses it and the engine's
	// session is never released; with sync = yes its fsync still overlaps
	// the round trip. Bounded, as a stalled disk must not eat the
	// engine's time.
	c.WaitWritten(time.Now().Add(askedWriteBound))
	return c.WaitUntil
}

// askedWriteBound is the longest an asked mark's write may hold up its
// question.
const askedWriteBound = 50 * time.Millisecond

// Settle implements session.Journal.
func (j *Journal) Settle(callID string) {
	j.settled(callID)
	j.log.Apply(store.Delete(askedPrefix + callID))
}

// settled forgets an asked mark before the op that deletes it is applied,
// so a snapshot has it only if that op lands after the rotation. It says
// whether a mark was in flight.
func (j *Journal) settled(callID string) bool {
	j.askMu.Lock()
	defer j.askMu.Unlock()
	_, ok := j.asked[callID]
	delete(j.asked, callID)
	return ok
}

// Save implements session.Journal.
func (j *Journal) Save(sess *session.Session) session.Wait {
	buf, _ := j.records.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	*buf = sess.AppendRecord((*buf)[:0])
	put := store.Put(sessionPrefix+sess.CallID, *buf)
	var wait session.Wait
	if j.settled(sess.CallID) { // the first save after the engine was asked
		wait = j.log.Stage(put, store.Delete(askedPrefix+sess.CallID)).WaitUntil
	} else {
		wait = j.log.Stage(put).WaitUntil
	}
	j.records.Put(buf)
	if j.refuse {
		return j.notDurable(wait)
	}
	return wait
}

// End implements session.Journal: the session's removal and its debit in
// one batch; the debit is handed to the spool once that batch is durable.
func (j *Journal) End(callID string, owed *session.Owed) session.Wait {
	return j.end(callID, owed)
}

// Release implements session.Journal: End for a caller that does not
// wait, applied rather than staged.
func (j *Journal) Release(callID string, owed *session.Owed) {
	j.settled(callID)
	gone := []store.Op{store.Delete(sessionPrefix + callID), store.Delete(askedPrefix + callID)}
	if owed == nil {
		j.log.Apply(gone...)
		return
	}
	j.debits.spool.Owe(debit.Owed{Owed: *owed}, gone...) // applied: nobody waits
}

// end stages the session's removal, with its debit and the ops in with,
// as one batch.
func (j *Journal) end(callID string, owed *session.Owed, with ...store.Op) session.Wait {
	j.settled(callID) // the delete below also clears a mark restored from disk
	gone := append([]store.Op{store.Delete(sessionPrefix + callID), store.Delete(askedPrefix + callID)}, with...)
	if owed == nil {
		if j.noSync || len(with) > 0 {
			// noSync: staged, the caller's Wait writes it, cheapest. A
			// dialog end request is waited for: an operator's terminate
			// of an unlimited call has no timer to end it again.
			return j.log.Stage(gone...).WaitUntil
		}
		// Nothing is owed: the reply need not wait for an fsync. A crash
		// before this write lands brings the ended call back at restart,
		// where its timer, accounting or housekeeping ends it again, with
		// no debit either way.
		j.log.Apply(gone...)
		return noWait
	}
	return j.debits.owe(debit.Owed{Owed: *owed}, gone...)
}

func noWait(time.Time) error { return nil }

// EndAtAnswer implements session.Journal: the session's removal, its
// release and the order to end it when answered in one batch.
func (j *Journal) EndAtAnswer(callID string, owed *session.Owed, sess *session.Session) session.Wait {
	return j.end(callID, owed, store.Put(atAnswerPrefix+callID, sess.Marshal()))
}

// DropAtAnswer implements session.Journal.
func (j *Journal) DropAtAnswer(callID string) {
	j.log.Apply(store.Delete(atAnswerPrefix + callID))
}

// MaybeCompact writes a snapshot when the log has grown or aged.
func (j *Journal) MaybeCompact(m *session.Manager) {
	st := j.log.Stats()
	j.mu.Lock()
	due := st.Bytes-j.bytesAt > compactBytes || time.Since(j.lastCompact) > compactEvery
	j.mu.Unlock()
	if due {
		j.compact(m)
	}
}

// snapshot writes everything held in memory: sessions, asked marks, owed
// debits, dialog ends. The session table is copied in chunks (Each), not
// under one hold of the lock the proxy's requests take: its changes made
// while the snapshot is taken are in the log after the snapshot's start,
// which a load replays on top, and each record there is a whole put or a
// delete, so the replay ends in the state the table has.
func (j *Journal) snapshot(m *session.Manager) error {
	return j.log.Compact(func(put func(key string, v []byte)) {
		// Debits owed from here on are in the log after the rotation;
		// those of calls ended during the table's copy are left to it
		// (debit.Spool.DumpUpTo).
		var lastDebit uint64
		if j.debits != nil {
			lastDebit = j.debits.spool.LastID()
		}
		var rec []byte // put copies it: one buffer serves every session
		m.Each(func(sess *session.Session) {
			rec = sess.AppendRecord(rec[:0])
			put(sessionPrefix+sess.CallID, rec)
			if j.snapshotPut != nil {
				j.snapshotPut()
			}
		})
		m.EachAtAnswer(func(sess *session.Session) { put(atAnswerPrefix+sess.CallID, sess.Marshal()) })
		j.askMu.Lock()
		for id, rec := range j.asked {
			put(askedPrefix+id, rec)
		}
		j.askMu.Unlock()
		if j.debits != nil {
			j.debits.spool.DumpUpTo(lastDebit, put)
		}
		j.ends.dump(put)
		for k, v := range j.unknown {
			put(k, v)
		}
	})
}

func (j *Journal) compact(m *session.Manager) {
	start := time.Now()
	if err := j.snapshot(m); err != nil {
		j.logger.Error("state: snapshot failed", "err", err)
		return
	}
	j.mu.Lock()
	j.lastCompact, j.bytesAt = time.Now(), j.log.Stats().Bytes
	j.mu.Unlock()
	j.logger.Debug("state: snapshot written", "took_ms", time.Since(start).Milliseconds())
}

// Close stops the debit spool and leaves a compact snapshot of m (unless
// nil) behind for the next start. An error says what was not saved: a
// clean stop that saved nothing must not look like one.
func (j *Journal) Close(m *session.Manager) error {
	j.StopDebits()
	var failed error
	if m != nil {
		failed = j.finalSnapshot(m)
	}
	if err := j.log.Close(); err != nil {
		j.logger.Error("state: close failed", "err", err)
		if failed == nil {
			failed = fmt.Errorf("state: close failed: %w", err)
		}
	}
	return failed
}

// Synced reports whether every write is fsync'd before its wait returns
// (sync = yes).
func (j *Journal) Synced() bool { return !j.noSync }

// Stats are the state log's counters.
func (j *Journal) Stats() store.Stats { return j.log.Stats() }

// Fault says since when the state is not durable, and why (zero when it is).
func (j *Journal) Fault() (since time.Time, failed uint64, cause error) { return j.log.Fault() }

// FlushEvery is the interval of the background flush (sync = interval), else 0.
func (j *Journal) FlushEvery() time.Duration { return j.log.FlushEvery() }

// RefuseNotDurable reports Options.RefuseNotDurable.
func (j *Journal) RefuseNotDurable() bool { return j.refuse }
