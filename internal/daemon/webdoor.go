package daemon

import (
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/internal/config"
	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/callcontrol/callcontrol/internal/metrics"
	"github.com/callcontrol/callcontrol/internal/proxy"
	"github.com/callcontrol/callcontrol/internal/web"
)

// webDoor runs the optional HTTP listener ([HTTP] listen) and swaps it on
// reload.
type webDoor struct {
	d   *Daemon
	mu  sync.Mutex
	srv *web.Server // nil: off
	cfg config.HTTP
	wg  sync.WaitGroup
}

func startWeb(d *Daemon) (*webDoor, error) {
	w := &webDoor{d: d}
	return w, w.reload(d.cfg.HTTP)
}

// reload applies cfg: a new address gets a new listener (started before
// the old one closes, so a failure keeps the old one serving); new
// credentials apply to the next request.
func (w *webDoor) reload(cfg config.HTTP) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.srv != nil && cfg.Listen == w.cfg.Listen {
		if err := w.srv.SetAuth(cfg.User, cfg.PasswordHash); err != nil {
			return err
		}
		w.cfg = cfg
		return nil
	}
	var srv *web.Server
	if cfg.Enabled() {
		var err error
		srv, err = web.New(web.Options{Listen: cfg.Listen, User: cfg.User, PasswordHash: cfg.PasswordHash,
			Backend: backend{w.d}, Ready: w.d.notReady, Metrics: w.d.metrics.Registry(), Log: w.d.log})
		if err != nil {
			return err
		}
		w.wg.Add(1)
		go func() { defer w.wg.Done(); srv.Serve() }()
		w.d.log.Info("http listening", "listen", srv.Addr(), "auth", cfg.Auth())
	}
	if w.srv != nil {
		w.srv.Close()
		w.d.log.Info("http listener closed", "listen", w.cfg.Listen)
	}
	w.srv, w.cfg = srv, cfg
	return nil
}

// addr is where the listener is bound ("" when off).
func (w *webDoor) addr() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.srv == nil {
		return ""
	}
	return w.srv.Addr()
}

func (w *webDoor) close() {
	w.mu.Lock()
	if w.srv != nil {
		w.srv.Close()
		w.srv = nil
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// notReady lists what keeps the daemon from serving calls: the proxy
// socket gone or not served, or a state log that does not write.
func (d *Daemon) notReady() []string {
	if d.stopping.Load() {
		return []string{"callcontrold is stopping"}
	}
	var problems []string
	d.mu.Lock()
	sock, stateDir := d.cfg.CallControl.Socket, d.cfg.CallControl.StateDir
	d.mu.Unlock()
	if d.proxySrv == nil {
		problems = append(problems, "the proxy socket is not served yet")
	} else if fi, err := os.Stat(sock); err != nil || fi.Mode().Type() != fs.ModeSocket {
		problems = append(problems, fmt.Sprintf("the proxy socket %s is gone: the proxy cannot connect (restart callcontrold)", sock))
	} else if since, err := d.proxySrv.AcceptFailing(); !since.IsZero() {
		problems = append(problems, fmt.Sprintf("the proxy socket %s has accepted no connection since %s: %v (a proxy that connects now is not served)",
			sock, since.UTC().Format(time.RFC3339), err))
	}
	if st := d.state.Stats(); st.Failing {
		problems = append(problems, fmt.Sprintf("the state log's last write failed (%d errors since start): calls are not durable, check the disk of %s",
			st.Errors, stateDir))
	}
	return problems
}

// metricsState is read by every Prometheus scrape.
func (d *Daemon) metricsState() metrics.State {
	s := metrics.State{Started: d.started}
	if d.sessions == nil || d.state == nil {
		return s
	}
	s.SessionsPending, s.SessionsInProgress, s.Parties = d.sessions.Counts()
	s.EnginesUp, s.EnginesTotal = d.engines.connected()
	var oldest time.Time
	s.DialogEndsPending, oldest = d.state.DialogEnds().Summary()
	if s.DialogEndsPending > 0 {
		s.DialogEndsOldest = time.Since(oldest)
	}
	dc := d.dialogs.Counts()
	s.DialogEndsSent, s.DialogEndsConfirmed, s.DialogEndsRetried = dc.Sent, dc.Confirmed+dc.Gone, dc.Retried
	s.DialogEndsFailed = dc.Refused + dc.Unendable
	var cs control.Stats
	d.checkStats(&cs)
	s.PrepaidRefused = cs.PrepaidRefused
	if cs.ManagementSocket != nil {
		s.ManagementSocket = cs.ManagementSocket.State
	}
	for _, e := range cs.Engines {
		s.Engines = append(s.Engines, metrics.Engine{Address: e.Address, State: e.State})
	}
	if sp := d.state.Spool(); sp != nil {
		c := sp.Delivered()
		s.DebitsWaiting = sp.Waiting()
		s.DebitsDelivered, s.DebitsAlreadyApplied, s.DebitsFailed, s.DebitRetries = c.Delivered, c.AlreadyApplied, c.Refused, c.Retries
	}
	if d.acct != nil && d.acct.poller != nil {
		s.AccountingPolls, s.AccountingErrors = d.acct.poller.Polls()
	}
	st := d.state.Stats()
	s.StateSync, s.StateFailing, s.StateWriteErrors = d.state.Synced(), st.Failing, st.Errors
	s.StateFlushEvery = d.state.FlushEvery()
	s.StateLastSync, s.StateMaxSync = st.LastSync, st.MaxSync
	return s
}

// countingHandler counts each proxy request and its latency: atomic adds
// into counters resolved at start, nothing under a lock.
type countingHandler struct {
	h proxy.Handler
	m *metrics.Proxy
}

func (c countingHandler) Handle(r *proxy.Request, received time.Time) string {
	reply := c.h.Handle(r, received)
	c.m.Observe(r.Command, reply, time.Since(received))
	return reply
}
