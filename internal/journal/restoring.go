package journal

import (
	"bytes"

	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
)

// restoring takes the ops the store replays at Open (store.Replayed), in
// the order the log applies them, and keeps the last of each key. A
// session's record is decoded as it is read: with a million calls the
// snapshot file, a map of its records and the sessions decoded from them
// were the restart's peak of memory when held together; now only the
// sessions are. The other records (asked marks, calls to end at answer,
// dialog ends, debits, kinds this version does not know) are few, and
// kept as they are, copied.
type restoring struct {
	// sessions are the calls whose last record decodes, by the Call-ID in
	// their key; unreadable the keys (the same) whose last record does
	// not.
	sessions   map[string]*session.Session
	unreadable map[string]struct{}
	records    map[string][]byte // every other key's last record
}

func newRestoring() *restoring {
	return &restoring{sessions: make(map[string]*session.Session), unreadable: make(map[string]struct{}),
		records: make(map[string][]byte)}
}

var sessionKey = []byte(sessionPrefix)

// apply is the store's replay callback: op's bytes are reused after it
// returns.
func (r *restoring) apply(op store.Replayed) {
	id, ok := bytes.CutPrefix(op.Key, sessionKey)
	if !ok {
		if op.Delete {
			delete(r.records, string(op.Key))
		} else {
			r.records[string(op.Key)] = bytes.Clone(op.Value)
		}
		return
	}
	if op.Delete {
		delete(r.sessions, string(id))
		delete(r.unreadable, string(id))
		return
	}
	sess, err := session.Unmarshal(op.Value)
	if err != nil {
		delete(r.sessions, string(id))
		r.unreadable[string(id)] = struct{}{}
		return
	}
	key := sess.CallID // the key's Call-ID, as a rule: shared, not a second copy
	if key != string(id) {
		key = string(id)
	}
	r.sessions[key] = sess
	delete(r.unreadable, key)
}
