package daemon

import (
	"context"
	"log/slog"
	"sync"

	"github.com/callcontrol/callcontrol/internal/acct"
	"github.com/callcontrol/callcontrol/internal/config"
	"github.com/callcontrol/callcontrol/internal/session"
)

// accounting runs the radacct poller and the RADIUS listener, when
// configured. Neither ever delays the proxy's replies or the start: the
// first poll (catching calls that ended while the daemon was down) runs in
// the background.
type accounting struct {
	poller   *acct.Poller
	listener *acct.Listener
}

func startAccounting(ctx context.Context, cfg *config.Config, m *session.Manager, wg *sync.WaitGroup, log *slog.Logger) (*accounting, error) {
	a := &accounting{}
	if r := cfg.RadiusDatabase; r.Enabled {
		p, err := acct.NewPoller(acct.DBConfig{User: r.User, Password: r.Password, Host: r.Host, Database: r.Database,
			Table: r.Table, Columns: acct.Columns{SessionID: r.SessionIDField, FromTag: r.FromTagField, ToTag: r.ToTagField,
				SessionTime: r.DurationField, StopTime: r.StopTimeField, ConnectInfoStop: r.StopInfoField,
				MediaInfo: r.MediaInfoField}}, tracker{m}, log)
		if err != nil {
			return nil, err
		}
		a.poller = p
		wg.Add(1)
		go func() { defer wg.Done(); p.Run(ctx, cfg.CallControl.CheckInterval) }() // its first round at once
	}
	if r := cfg.RadiusAccounting; r.Enabled() {
		l, err := acct.NewListener(r.Listen, r.Secret, tracker{m}, log)
		if err != nil {
			a.close()
			return nil, err
		}
		a.listener = l
		wg.Add(1)
		go func() { defer wg.Done(); l.Serve(ctx) }()
	}
	return a, nil
}

func (a *accounting) close() {
	if a.listener != nil {
		a.listener.Close()
	}
	if a.poller != nil {
		a.poller.Close()
	}
}

// tracker is the session table as accounting sees it (acct.Tracker).
type tracker struct{ m *session.Manager }

func (t tracker) TrackedCalls() []acct.Call {
	watched := t.m.Watched()
	calls := make([]acct.Call, len(watched))
	for i, w := range watched {
		calls[i] = acct.Call{CallID: w.CallID, FromTag: w.FromTag, Since: w.Since}
	}
	return calls
}

func (t tracker) End(o acct.Outcome) bool {
	switch o.Kind {
	case acct.Terminated:
		return t.m.EndUnseen(o.CallID, o.FromTag, o.Duration)
	case acct.TimedOut:
		return t.m.EndSilent(o.CallID, o.FromTag)
	}
	return false
}
