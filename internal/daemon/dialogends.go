package daemon

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

// pendingEnd is one unconfirmed request to end a dialog.
type pendingEnd struct {
	t     dialog.Target
	since time.Time // when the call was ended
}

// dialogEnds is the table of unconfirmed dialog ends, mirroring their
// records in the state log (for snapshots, stats and operators).
//
// Its lock is taken on the call-end path (under the session lock), so
// nothing here walks every pending end: order keeps the references in
// the order they were made (oldest first), trimmed as the oldest settle.
type dialogEnds struct {
	mu      sync.Mutex
	next    uint64
	byRef   map[uint64]pendingEnd
	byCall  map[string]uint64                // the latest pending end of each Call-ID
	order   []uint64                         // references, oldest first; settled ones are skipped
	watches map[string][]chan dialog.Outcome // by Call-ID: terminate waits for the proxy's word
}

func newDialogEnds() *dialogEnds {
	return &dialogEnds{byRef: make(map[uint64]pendingEnd), byCall: make(map[string]uint64),
		watches: make(map[string][]chan dialog.Outcome)}
}

// insertLocked registers p under ref, which is larger than every earlier one.
func (e *dialogEnds) insertLocked(ref uint64, p pendingEnd) {
	e.byRef[ref] = p
	e.byCall[p.t.CallID] = ref
	e.order = append(e.order, ref)
}

// trimLocked drops settled references from the front of order, and
// rebuilds it when settled ones behind a long-pending end pile up.
func (e *dialogEnds) trimLocked() {
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

func encodeDialogEnd(p pendingEnd) []byte {
	b := make([]byte, 0, 32+len(p.t.CallID))
	b = append(b, dialogEndVersion)
	b = binary.AppendUvarint(b, uint64(len(p.t.CallID)))
	b = append(b, p.t.CallID...)
	b = binary.AppendUvarint(b, uint64(p.t.Dialog.Entry))
	b = binary.AppendUvarint(b, uint64(p.t.Dialog.ID))
	var flags byte
	if p.t.NoID {
		flags |= 1
	}
	b = append(b, flags)
	return binary.AppendVarint(b, p.since.UnixNano())
}

var errDialogEndRecord = errors.New("dialog end record: corrupt")

func decodeDialogEnd(b []byte) (pendingEnd, error) {
	var p pendingEnd
	if len(b) == 0 || b[0] != dialogEndVersion {
		return p, errDialogEndRecord
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return p, errDialogEndRecord
	}
	p.t.CallID = string(b[k : k+int(n)])
	b = b[k+int(n):]
	var v [2]uint64
	for i := range v {
		v[i], k = binary.Uvarint(b)
		if k <= 0 || v[i] > 0xffffffff {
			return p, errDialogEndRecord
		}
		b = b[k:]
	}
	p.t.Dialog = dialog.ID{Entry: uint32(v[0]), ID: uint32(v[1])}
	if len(b) == 0 {
		return p, errDialogEndRecord
	}
	p.t.NoID = b[0]&1 != 0
	since, k := binary.Varint(b[1:])
	if k <= 0 || p.t.CallID == "" {
		return p, errDialogEndRecord
	}
	p.since = time.Unix(0, since)
	return p, nil
}

// restoreDialogEnds reads the records found at start; they are sent again
// once the daemon runs.
func restoreDialogEnds(restored map[string][]byte, log *slog.Logger) *dialogEnds {
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
		p.t.Ref = ref
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
func (e *dialogEnds) add(t dialog.Target, now time.Time) (dialog.Target, store.Op) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.next++
	t.Ref = e.next
	p := pendingEnd{t: t, since: now}
	e.insertLocked(t.Ref, p)
	return t, store.Put(dialogEndKey(t.Ref), encodeDialogEnd(p))
}

// done forgets t (before its record's deletion is applied) and tells
// whoever watches its call.
func (e *dialogEnds) done(t dialog.Target, o dialog.Outcome) bool {
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

// watch returns a channel told the outcome of the next end of callID
// that settles; stop with unwatch.
func (e *dialogEnds) watch(callID string) chan dialog.Outcome {
	ch := make(chan dialog.Outcome, 1)
	e.mu.Lock()
	e.watches[callID] = append(e.watches[callID], ch)
	e.mu.Unlock()
	return ch
}

func (e *dialogEnds) unwatch(callID string, ch chan dialog.Outcome) {
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

// oldest lists up to n pending ends (all for n < 0), oldest first.
func (e *dialogEnds) oldest(n int) []pendingEnd {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n < 0 || n > len(e.byRef) {
		n = len(e.byRef)
	}
	out := make([]pendingEnd, 0, n)
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

// summary counts the pending ends and says when the oldest was made.
func (e *dialogEnds) summary() (n int, oldest time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.order) > 0 {
		oldest = e.byRef[e.order[0]].since // trimLocked keeps the front live
	}
	return len(e.byRef), oldest
}

// byCallID finds the pending end of callID, if any.
func (e *dialogEnds) byCallID(callID string) (pendingEnd, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ref, ok := e.byCall[callID]
	if !ok {
		return pendingEnd{}, false
	}
	return e.byRef[ref], true
}

func (e *dialogEnds) dump(put func(string, []byte)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ref, p := range e.byRef {
		put(dialogEndKey(ref), encodeDialogEnd(p))
	}
}

// EndWithBye implements session.Journal: the session's removal, its debit
// and the request to end its dialog in one batch.
func (s *state) EndWithBye(callID string, owed *session.Owed, bye dialog.Target) (session.Wait, dialog.Target) {
	bye, put := s.ends.add(bye, time.Now())
	return s.end(callID, owed, put), bye
}

// dialogEnded is the dialog client's word on a request: confirmed, gone,
// or impossible. The record goes; a request unknown here (sent again
// after a restart that also ended the call anew) changes nothing.
func (s *state) dialogEnded(t dialog.Target, o dialog.Outcome) {
	if s.ends.done(t, o) {
		s.log.Apply(store.Delete(dialogEndKey(t.Ref)))
	}
}

// resendDialogEnds hands the ends recorded before the restart to the
// dialog client.
func (s *state) resendDialogEnds(c dialog.Ender, log *slog.Logger) {
	pending := s.ends.oldest(-1)
	if len(pending) == 0 {
		return
	}
	log.Info("dialog end requests not confirmed before the restart: sending them again", "count", len(pending),
		"oldest", time.Since(pending[0].since).Round(time.Second).String())
	for _, p := range pending {
		c.End(p.t)
	}
}

func (p pendingEnd) String() string {
	return fmt.Sprintf("%s (%s)", p.t.CallID, p.t.Dialog)
}
