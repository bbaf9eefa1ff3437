package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/session"
)

// controlDoor serves the operators' control socket from the daemon.
type controlDoor struct {
	srv *control.Server
}

func startControl(d *Daemon) (*controlDoor, error) {
	cc := d.cfg.CallControl
	srv, err := control.NewServer(cc.ControlSocket, cc.ControlGroup, backend{d}, d.log)
	if err != nil {
		return nil, fmt.Errorf("[CallControl] control_socket = %q: %w", cc.ControlSocket, err)
	}
	if err := srv.AllowReadOnly(cc.ControlReadGroup); err != nil {
		srv.Close()
		return nil, fmt.Errorf("[CallControl] control_read_group = %q: %w", cc.ControlReadGroup, err)
	}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); srv.Serve() }()
	return &controlDoor{srv: srv}, nil
}

func (c *controlDoor) close() { c.srv.Close() }

// backend answers the control socket.
type backend struct{ d *Daemon }

func info(s *session.Session, now time.Time) control.SessionInfo {
	i := control.SessionInfo{CallID: s.CallID, Party: s.Party, Destination: s.RURI, State: s.State(),
		FromTag: s.FromTag, SourceIP: s.SourceIP, Engine: s.Engine, Prepaid: s.Prepaid,
		Created: s.Created, Answered: s.Answered, Limit: s.Limit, Remaining: s.Remaining(now)}
	if s.HasDialog {
		i.DialogID = s.Dialog.String()
	}
	if !strings.EqualFold(s.Diverter, "none") {
		i.Diverter = s.Diverter
	}
	if !s.InProgress() {
		i.Remaining = session.NoLimit
	}
	i.EndAtAnswer = s.EndAtAnswer
	return i
}

// sessionsChunk is how many sessions a listing passes on at a time: the
// manager's walk copies its own chunks under the lock; this bounds what
// the listing holds while the control socket or the web writes it.
const sessionsChunk = 256

// Sessions walks the table in the order sessions came (oldest first: the
// manager restores saved ones in that order too), never holding it whole.
// An asker gone (ctx done) stops it, also while it waits for the listing
// slot behind another listing.
func (b backend) Sessions(ctx context.Context, prefix string, f func([]control.SessionInfo) error) error {
	now := time.Now()
	// Parties are folded as the engine folds them; so is the prefix,
	// before its scheme ("SIP:" too) is cut.
	folded := strings.TrimPrefix(session.FoldParty(prefix), "sip:")
	chunk := make([]control.SessionInfo, 0, sessionsChunk)
	var err error
	flush := func() {
		if err == nil && len(chunk) > 0 {
			err = f(chunk)
		}
		clear(chunk) // keep no strings of sessions gone meanwhile
		chunk = chunk[:0]
	}
	gone := func() bool { return err != nil || ctx.Err() != nil }
	walked := b.d.sessions.Walk(gone, func(s *session.Session) {
		if err != nil {
			return
		}
		if prefix == "" || strings.HasPrefix(strings.TrimPrefix(s.Party, "sip:"), folded) {
			chunk = append(chunk, info(s, now))
			if len(chunk) == sessionsChunk {
				flush()
			}
		}
	})
	if !walked && err == nil {
		return ctx.Err()
	}
	flush()
	return err
}

func (b backend) Session(callID string) (control.SessionInfo, bool) {
	s, ok := b.d.sessions.Get(callID)
	if !ok {
		if g, ok := b.d.sessions.AtAnswer(callID); ok {
			i := info(&g, time.Now())
			i.State = "ringing, ends at answer"
			return i, true
		}
		// Over, but its dialog end not yet confirmed by the proxy.
		if p, ok := b.d.state.DialogEnds().ByCallID(callID); ok {
			return endingInfo(p), true
		}
		return control.SessionInfo{}, false
	}
	return info(&s, time.Now()), true
}

func (b backend) Terminate(callID string) (control.TerminateInfo, bool) {
	wait := b.d.opts.terminateWait
	if wait == 0 {
		wait = terminateWait
	}
	ti, ok := terminate(b.d.sessions, b.d.state.DialogEnds(), callID, wait)
	if ok && ti.Outcome == control.TerminatePending {
		ti.Detail = b.d.pendingEndDetail(ti.Detail)
	}
	return ti, ok
}

// pendingEndDetail says why an end is not confirmed when the daemon knows:
// a management socket that failed its last check never got the request,
// and "not confirmed yet" alone would send the operator looking at the
// proxy's dialogs rather than at the socket.
func (d *Daemon) pendingEndDetail(detail string) string {
	d.checks.mu.Lock()
	mgmt := d.checks.mgmt
	d.checks.mu.Unlock()
	if mgmt.State != control.SocketFailing {
		return detail
	}
	return fmt.Sprintf("the proxy's management socket %s failed its last check (%s ago: %s); the request is kept and sent again until the proxy confirms (see callcontrol stats)",
		mgmt.Path, time.Since(mgmt.Checked).Round(time.Second), mgmt.Cause)
}

func (b backend) Stats() control.Stats {
	pending, inProgress, parties := b.d.sessions.Counts()
	up, total := b.d.engines.connected()
	st := b.d.state.Stats()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	since, _, cause := b.d.state.Fault()
	fault := ""
	if cause != nil {
		fault = cause.Error()
	}
	endsPending, oldest := b.d.state.DialogEnds().Summary()
	endsOldest := 0.0
	if endsPending > 0 {
		endsOldest = time.Since(oldest).Seconds()
	}
	var unflushed uint64
	if b.d.state.FlushEvery() > 0 {
		unflushed = st.Bytes - min(st.Flushed, st.Bytes)
	}
	stats := control.Stats{
		Sessions:                map[string]int{"pending": pending, "in-progress": inProgress},
		Parties:                 parties,
		EnginesUp:               up,
		EnginesTotal:            total,
		DebitsWaiting:           b.d.state.DebitsWaiting(),
		DialogEndsPending:       endsPending,
		DialogEndsOldestSeconds: endsOldest,
		DialogEnds:              oldestEnds(b.d.state.DialogEnds(), maxEndsListed),
		StateSync:               b.d.state.Synced(),
		StateLastSyncMS:         ms(st.LastSync),
		StateMaxSyncMS:          ms(st.MaxSync),
		StateWriteErrors:        st.Errors,
		StateFlushEveryMS:       ms(b.d.state.FlushEvery()),
		StateUnflushedBytes:     unflushed,
		StateNotDurableSince:    since,
		StateFault:              fault,
		Uptime:                  time.Since(b.d.started),
		Requests:                b.d.proxySrv.Requests(),
		Version:                 Version,
	}
	b.d.checkStats(&stats)
	return stats
}

func (b backend) Reload() ([]string, error) { return b.d.Reload() }
