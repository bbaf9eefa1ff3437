package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/internal/budget"
	"github.com/callcontrol/callcontrol/internal/config"
	"github.com/callcontrol/callcontrol/internal/metrics"
	"github.com/callcontrol/callcontrol/internal/rating"
	"github.com/callcontrol/callcontrol/internal/session"
)

// debitTimeout bounds one DebitBalance: debits are off the proxy's path,
// so they may wait longer than a MaxSessionTime, but not forever.
const debitTimeout = 5 * time.Second

// engines is the rating pool with the configured per-request timeout
// applied to MaxSessionTime, as the proxy's time budget allows.
type engines struct {
	pool    *rating.Pool // nil: no engine configured, every call postpaid
	timeout atomic.Int64 // time.Duration
	log     *slog.Logger
	observe *metrics.Rating // nil: not counted
}

func newEngines(cfg *config.Config, log *slog.Logger) *engines {
	e := &engines{log: log}
	if cfg.CDRTool.Enabled() {
		e.pool = rating.NewPool(cfg.CDRTool.Addresses, rating.Options{Timeout: cfg.CDRTool.Timeout}, log)
	}
	e.setTimeout(cfg)
	return e
}

func (e *engines) setTimeout(cfg *config.Config) {
	t, capped := budget.Of(cfg.CallControl.ProxyTimeout).Engine(cfg.CDRTool.Timeout)
	if capped && e.pool != nil && !cfg.CDRTool.AddressSet {
		// The configuration warned already, unless the engine is the
		// default one, which it did not know of.
		e.log.Warn("[CDRTool] timeout leaves no room under [CallControl] proxy_timeout: each request to the rating engine is capped so the proxy is answered in time",
			"timeout", cfg.CDRTool.Timeout, "capped_to", t)
	}
	e.timeout.Store(int64(t))
}

// rater is what the session manager asks; nil when no engine is set.
func (e *engines) rater() session.Rater {
	if e.pool == nil {
		return nil
	}
	return e
}

func (e *engines) Pick(party string) string     { return e.pool.Pick(party) }
func (e *engines) Reserve(party string) string  { return e.pool.Reserve(party) }
func (e *engines) Unreserve(party string)       { e.pool.Unreserve(party) }
func (e *engines) Acquire(party, engine string) { e.pool.Acquire(party, engine) }
func (e *engines) Release(party string)         { e.pool.Release(party) }
func (e *engines) Owed(party string) int        { return e.pool.Owed(party) }
func (e *engines) MaxSessionTime(ctx context.Context, engine string, r rating.Request) (rating.MaxTime, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(e.timeout.Load()))
	defer cancel()
	t0 := time.Now()
	res, err := e.pool.MaxSessionTime(ctx, engine, r)
	e.count(engine, metrics.MaxSessionTime, err, t0)
	return res, err
}

// count records one rating request for the metrics.
func (e *engines) count(engine, request string, err error, t0 time.Time) {
	if e.observe == nil {
		return
	}
	result := metrics.ResultOK
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		result = metrics.ResultTimeout
	case err != nil:
		result = metrics.ResultError
	}
	e.observe.Observe(engine, request, result, time.Since(t0))
}

// DebitBalance delivers a debit for the spool.
func (e *engines) DebitBalance(ctx context.Context, engine string, d rating.Debit) (rating.DebitReply, error) {
	if e.pool == nil {
		// Certainly not sent: the spool must not take it for fate
		// unknown, or the engine's Failed, once it is back, would drop
		// it as already applied (TestDebitOwedAcrossARunWithoutEngine).
		return rating.DebitReply{}, fmt.Errorf("%w: %w", rating.ErrNotSent, errNoRating)
	}
	ctx, cancel := context.WithTimeout(ctx, debitTimeout)
	defer cancel()
	t0 := time.Now()
	res, err := e.pool.DebitBalance(ctx, engine, d)
	e.count(engine, metrics.DebitBalance, err, t0)
	return res, err
}

func (e *engines) connected() (up, total int) {
	if e.pool == nil {
		return 0, 0
	}
	return e.pool.Connected()
}

func (e *engines) reload(cfg *config.Config) {
	if e.pool != nil {
		e.pool.SetAddrs(cfg.CDRTool.Addresses)
	}
	e.setTimeout(cfg)
}

func (e *engines) close() {
	if e.pool != nil {
		e.pool.Close()
	}
}
