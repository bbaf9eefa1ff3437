package unixsock

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Accept failures are retried after a wait that starts at firstBackoff and
// doubles up to maxBackoff, as net/http's Server does: short enough that a
// passing shortage (out of file descriptors) costs little, long enough that
// a lasting one does not spin.
const (
	firstBackoff = 5 * time.Millisecond
	maxBackoff   = time.Second
)

// Serve accepts connections on ln and passes each to handle, in the
// accepting goroutine: handle decides whether to serve it or refuse it and
// starts the connection's goroutine itself. Serve returns when ln is closed
// or ctx is done; the caller owns ln and closes it (closing ln alone stops a
// Serve blocked in Accept, cancelling ctx also stops one waiting to retry).
//
// Every other accept error is retried with backoff: a server that gave up
// would leave the daemon running but deaf. A run of failures is logged
// once when it starts, at error level, and once when accepting works again.
func Serve(ctx context.Context, ln net.Listener, log *slog.Logger, name string, handle func(net.Conn)) {
	ServeReporting(ctx, ln, log, name, nil, handle)
}

// AcceptHealth is what ServeReporting says of its accept loop, for a
// readiness check: a daemon whose socket accepts nothing is not ready,
// though it runs. The zero value is ready to use.
type AcceptHealth struct {
	mu    sync.Mutex
	since time.Time
	err   error
}

// Failing returns since when accepting has failed, and the last error;
// zero and nil while it works.
func (h *AcceptHealth) Failing() (since time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.since, h.err
}

func (h *AcceptHealth) set(since time.Time, err error) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.since, h.err = since, err
	h.mu.Unlock()
}

// ServeReporting is Serve that also keeps health (nil: none) up to date.
func ServeReporting(ctx context.Context, ln net.Listener, log *slog.Logger, name string, health *AcceptHealth, handle func(net.Conn)) {
	var (
		backoff  time.Duration
		failures int
		since    time.Time
	)
	for {
		c, err := ln.Accept()
		if err == nil {
			if failures > 0 {
				log.Info(name+": accepting connections again", "failed_accepts", failures, "after", time.Since(since).Round(time.Millisecond))
				backoff, failures = 0, 0
				health.set(time.Time{}, nil)
			}
			handle(c)
			continue
		}
		if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
			return
		}
		if failures == 0 {
			since = time.Now()
			log.Error(name+": accept failed; retrying with backoff until it works (logged again only then)", "err", err, "max_backoff", maxBackoff)
		}
		health.set(since, err)
		failures++
		backoff = min(max(2*backoff, firstBackoff), maxBackoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
