// Package sipdialog names a proxy's SIP dialog as the session table keeps
// it and the dialog client ends it: its id, as the call_control module
// reports it at start, and a request to end it. It imports nothing of the
// project, so the session package names these without the dialog
// transport (internal/dialog sends the requests).
package sipdialog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ID identifies a proxy dialog by its hash table entry and id.
type ID struct{ Entry, ID uint32 }

// ErrBadID is wrapped by every ParseID error.
var ErrBadID = errors.New("dialog: bad dialog id")

// ParseID accepts the `dialogid` of a call_control `start`: "h_entry:h_id"
// in decimal (Kamailio, OpenSIPS before 3.0) or one decimal 64-bit number
// (h_entry<<32)|h_id (OpenSIPS 3.x).
func ParseID(s string) (ID, error) {
	s = strings.TrimSpace(s)
	if e, i, ok := strings.Cut(s, ":"); ok {
		entry, err1 := parseDecimal(e, 32)
		id, err2 := parseDecimal(i, 32)
		if err1 != nil || err2 != nil {
			return ID{}, fmt.Errorf("%w: %q", ErrBadID, s)
		}
		return ID{Entry: uint32(entry), ID: uint32(id)}, nil
	}
	v, err := parseDecimal(s, 64)
	if err != nil {
		return ID{}, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	return ID{Entry: uint32(v >> 32), ID: uint32(v)}, nil
}

// parseDecimal is strict: digits only (no sign, no "0x", no spaces inside),
// so a garbled id is refused rather than misread.
func parseDecimal(s string, bits int) (uint64, error) {
	if s == "" || len(s) > 20 {
		return 0, ErrBadID
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, ErrBadID
		}
	}
	return strconv.ParseUint(s, 10, bits)
}

// String returns the "entry:id" form.
func (d ID) String() string {
	return strconv.FormatUint(uint64(d.Entry), 10) + ":" + strconv.FormatUint(uint64(d.ID), 10)
}

// Uint64 returns the OpenSIPS 3.x form (h_entry<<32)|h_id.
func (d ID) Uint64() uint64 { return uint64(d.Entry)<<32 | uint64(d.ID) }

// Target names the call to end: its Call-ID (for logs, and OpenSIPS' default
// form) and the proxy dialog id from `start`.
type Target struct {
	CallID string
	Dialog ID
	// NoID says the proxy gave no usable dialog id: the call was not
	// answered yet, or its `dialogid` did not parse. Only OpenSIPS can end
	// such a dialog (by Call-ID); Kamailio knows dialogs only by id.
	NoID bool
	// Ref is the caller's handle on the request (the state log's record
	// of it), handed back unchanged to the dialog client's Options.OnDone.
	Ref uint64
	// Restored says the request comes from the state log of an earlier
	// run: the proxy may have restarted since, and given its id to
	// another call.
	Restored bool
}

// Ender ends dialogs. End never blocks (callers hold locks or sit on the
// proxy path) and never drops a request without a log line.
type Ender interface{ End(t Target) }

// Found is what the proxy says of the dialog of a Call-ID it was asked
// about (Looker.Lookup).
type Found struct {
	// Exists: the proxy has a dialog with this Call-ID (in any state
	// before it ended).
	Exists bool
	// Answered: the dialog was answered (200 OK seen, confirmed or
	// waiting for its ACK), not only ringing.
	Answered bool
	// Dialog is the dialog's id, as `start` would have given it; HasDialog
	// says whether the proxy gave one.
	Dialog    ID
	HasDialog bool
	// AnsweredAt is when it was answered, by the proxy's clock (whole
	// seconds); zero when not answered or not told.
	AnsweredAt time.Time
	// Ended: the proxy still lists the dialog, ended (Kamailio keeps an
	// ended dialog a while); Exists is false. AnsweredAt and EndedAt,
	// when set, say what it lasted.
	Ended   bool
	EndedAt time.Time
}

// Looker asks the proxy about the dialog of a Call-ID: after a restart,
// a call that was ringing may have been answered while the daemon was
// down, and the proxy's `start` for it was lost. Lookup is safe for
// concurrent use; an error means the proxy gave no usable answer (the
// dialog's fate is unknown), not that the dialog is gone.
type Looker interface {
	Lookup(ctx context.Context, callID string) (Found, error)
}
