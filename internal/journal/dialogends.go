package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
)

// dialogEndPrefix keys the requests to end a dialog that the proxy has not
// confirmed: written in the same batch as the call's end, deleted when the
// proxy answers OK or that the dialog is gone, sent again after a restart.
const dialogEndPrefix = "e/"

func dialogEndKey(ref uint64) string { return dialogEndPrefix + strconv.FormatUint(ref, 16) }

// PendingEnd is one unconfirmed request to end a dialog.
type PendingEnd struct {
	Target dialog.Target
	Since  time.Time // when the call was ended
}

// DialogEnds is the table of unconfirmed dialog ends, mirroring their
// records in the state log (for snapshots, stats and operators).
//
// Its lock is taken on the call-end path (under the session lock), so
// nothing here walks every pending end: order keeps the references in
// the order they were made (oldest first), trimmed as the oldest settle.
type DialogEnds struct {
	mu      sync.Mutex
	next    uint64
	byRef   map[uint64]PendingEnd
	byCall  map[string]uint64                // the latest pending end of each Call-ID
	order   []uint64                         // references, oldest first; settled ones are skipped
	watches map[string][]chan dialog.Outcome // by Call-ID: terminate waits for the proxy's word
}

func newDialogEnds() *DialogEnds {
	return &DialogEnds{byRef: make(map[uint64]PendingEnd), byCall: make(map[string]uint64),
		watches: make(map[string][]chan dialog.Outcome)}
}

// insertLocked registers p under ref, which is larger than every earlier one.
func (e *DialogEnds) insertLocked(ref uint64, p PendingEnd) {
	e.byRef[ref] = p
	e.byCall[p.Target.CallID] = ref
	e.order = append(e.order, ref)
}

// trimLocked drops settled references from the front of order, and
// rebuilds it when settled ones behind a long-pending end pile up.
func (e *DialogEnds) trimLocked() {
	i := 0
	for i < len(e.order) {
		if _, ok := e.byRef[e.order[i]]; ok {
			break
		}
		i++
	}
	e.order = e.order[i:]
	if len(e.order) == 0 {
		e.order = nil // let a burst's array go
	}
	if len(e.order) > 2*len(e.byRef)+64 {
		live := make([]uint64, 0, len(e.byRef))
		for _, ref := range e.order {
			if _, ok := e.byRef[ref]; ok {
				live = append(live, ref)
			}
		}
		e.order = live
	}
}

const dialogEndVersion = 1

func encodeDialogEnd(p PendingEnd) []byte {
	b := make([]byte, 0, 32+len(p.Target.CallID))
	b = append(b, dialogEndVersion)
	b = binary.AppendUvarint(b, uint64(len(p.Target.CallID)))
	b = append(b, p.Target.CallID...)
	b = binary.AppendUvarint(b, uint64(p.Target.Dialog.Entry))
	b = binary.AppendUvarint(b, uint64(p.Target.Dialog.ID))
	var flags byte
	if p.Target.NoID {
		flags |= 1
	}
	b = append(b, flags)
	return binary.AppendVarint(b, p.Since.UnixNano())
}

var errDialogEndRecord = errors.New("dialog end record: corrupt")

func decodeDialogEnd(b []byte) (PendingEnd, error) {
	var p PendingEnd
	if len(b) == 0 || b[0] != dialogEndVersion {
		return p, errDialogEndRecord
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return p, errDialogEndRecord
	}
	p.Target.CallID = string(b[k : k+int(n)])
	b = b[k+int(n):]
	var v [2]uint64
	for i := range v {
		v[i], k = binary.Uvarint(b)
		if k <= 0 || v[i] > 0xffffffff {
			return p, errDialogEndRecord
		}
		b = b[k:]
	}
	p.Target.Dialog = dialog.ID{Entry: uint32(v[0]), ID: uint32(v[1])}
	if len(b) == 0 {
		return p, errDialogEndRecord
	}
	p.Target.NoID = b[0]&1 != 0
	since, k := binary.Varint(b[1:])
	if k <= 0 || p.Target.CallID == "" {
		return p, errDialogEndRecord
	}
	p.Since = time.Unix(0, since)
	return p, nil
}

// restoreDialogEnds reads the records found at start; they are sent again
// once the daemon runs.
func restoreDialogEnds(restored map[string][]byte, log *slog.Logger) *DialogEnds {
	e := newDialogEnds()
	bad := 0
	for k, v := range restored {
		hex, ok := strings.CutPrefix(k, dialogEndPrefix)
		if !ok {
			continue
		}
		ref, err := strconv.ParseUint(hex, 16, 64)
		p, derr := decodeDialogEnd(v)
		if err != nil || derr != nil {
			bad++
			continue
		}
		p.Target.Ref = ref
		e.byRef[ref] = p
		e.next = max(e.next, ref)
	}
	refs := make([]uint64, 0, len(e.byRef))
	for ref := range e.byRef {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i] < refs[j] })
	for _, ref := range refs {
		e.insertLocked(ref, e.byRef[ref])
	}
	if bad > 0 {
		log.Error("state: some dialog end requests could not be read; those calls may not be cut", "unreadable", bad)
	}
	return e
}

// add registers t (before its record is staged, so a snapshot taken in
// between has it) and returns it with its reference and record.
func (e *DialogEnds) add(t dialog.Target, now time.Time) (dialog.Target, store.Op) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.next++
	t.Ref = e.next
	p := PendingEnd{Target: t, Since: now}
	e.insertLocked(t.Ref, p)
	return t, store.Put(dialogEndKey(t.Ref), encodeDialogEnd(p))
}

// done forgets t (before its record's deletion is applied) and tells
// whoever watches its call.
func (e *DialogEnds) done(t dialog.Target, o dialog.Outcome) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.byRef[t.Ref]; !ok {
		return false
	}
	delete(e.byRef, t.Ref)
	if e.byCall[t.CallID] == t.Ref {
		delete(e.byCall, t.CallID)
	}
	e.trimLocked()
	for _, ch := range e.watches[t.CallID] {
		select {
		case ch <- o:
		default:
		}
	}
	return true
}

// Watch returns a channel told the outcome of the next end of callID
// that settles; stop with unwatch.
func (e *DialogEnds) Watch(callID string) chan dialog.Outcome {
	ch := make(chan dialog.Outcome, 1)
	e.mu.Lock()
	e.watches[callID] = append(e.watches[callID], ch)
	e.mu.Unlock()
	return ch
}

func (e *DialogEnds) Unwatch(callID string, ch chan dialog.Outcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	list := e.watches[callID]
	for i, c := range list {
		if c == ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(e.watches, callID)
	} else {
		e.watches[callID] = list
	}
}

// Oldest lists up to n pending ends (all for n < 0), oldest first.
func (e *DialogEnds) Oldest(n int) []PendingEnd {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n < 0 || n > len(e.byRef) {
		n = len(e.byRef)
	}
	out := make([]PendingEnd, 0, n)
	for _, ref := range e.order {
		if len(out) == n {
			break
		}
		if p, ok := e.byRef[ref]; ok {
			out = append(out, p)
		}
	}
	return out
}

// Summary counts the pending ends and says when the oldest was made.
func (e *DialogEnds) Summary() (n int, oldest time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.order) > 0 {
		oldest = e.byRef[e.order[0]].Since // trimLocked keeps the front live
	}
	return len(e.byRef), oldest
}

// ByCallID finds the pending end of callID, if any.
func (e *DialogEnds) ByCallID(callID string) (PendingEnd, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ref, ok := e.byCall[callID]
	if !ok {
		return PendingEnd{}, false
	}
	return e.byRef[ref], true
}

func (e *DialogEnds) dump(put func(string, []byte)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ref, p := range e.byRef {
		put(dialogEndKey(ref), encodeDialogEnd(p))
	}
}

// EndWithBye implements session.Journal: the session's removal, its debit
// and the request to end its dialog in one batch.
func (j *Journal) EndWithBye(callID string, owed *session.Owed, bye dialog.Target) (session.Wait, dialog.Target) {
	bye, put := j.ends.add(bye, time.Now())
	return j.end(callID, owed, put), bye
}

// EndWithByeAtAnswer implements session.Journal: EndWithBye and the order
// to end s when answered, in one batch.
func (j *Journal) EndWithByeAtAnswer(callID string, owed *session.Owed, bye dialog.Target, s *session.Session) (session.Wait, dialog.Target) {
	bye, put := j.ends.add(bye, time.Now())
	return j.end(callID, owed, put, store.Put(atAnswerPrefix+callID, s.Marshal())), bye
}

// DialogEnded is the dialog client's word on a request: confirmed, gone,
// or impossible. The record goes; a request unknown here (sent again
// after a restart that also ended the call anew) changes nothing.
func (j *Journal) DialogEnded(t dialog.Target, o dialog.Outcome) {
	if j.ends.done(t, o) {
		j.log.Apply(store.Delete(dialogEndKey(t.Ref)))
	}
}

// DialogEnds is the table of the dialog ends the proxy has not confirmed.
func (j *Journal) DialogEnds() *DialogEnds { return j.ends }

// ResendDialogEnds hands the ends recorded before the restart to the
// dialog client.
func (j *Journal) ResendDialogEnds(c dialog.Ender, log *slog.Logger) {
	pending := j.ends.Oldest(-1)
	if len(pending) == 0 {
		return
	}
	log.Info("dialog end requests not confirmed before the restart: sending them again", "count", len(pending),
		"oldest", time.Since(pending[0].Since).Round(time.Second).String())
	for _, p := range pending {
		t := p.Target
		t.Restored = true
		c.End(t)
	}
}

func (p PendingEnd) String() string {
	return fmt.Sprintf("%s (%s)", p.Target.CallID, p.Target.Dialog)
}
