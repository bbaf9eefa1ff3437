package unixsock

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// fakeListener fails Accept with each of errs in turn (nil: hands out a
// connection), then blocks until closed. It records when each Accept was
// called.
type fakeListener struct {
	mu     sync.Mutex
	errs   []error
	calls  []time.Time
	closed chan struct{}
	once   sync.Once
}

func newFakeListener(errs ...error) *fakeListener {
	return &fakeListener{errs: errs, closed: make(chan struct{})}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		if err != nil {
			return nil, &net.OpError{Op: "accept", Net: "unix", Err: err}
		}
		c, peer := net.Pipe()
		peer.Close()
		return c, nil
	}
	l.mu.Unlock()
	<-l.closed
	return nil, &net.OpError{Op: "accept", Net: "unix", Err: net.ErrClosed}
}

func (l *fakeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *fakeListener) Addr() net.Addr { return &net.UnixAddr{Name: "fake", Net: "unix"} }

func (l *fakeListener) gaps() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var d []time.Duration
	for i := 1; i < len(l.calls); i++ {
		d = append(d, l.calls[i].Sub(l.calls[i-1]))
	}
	return d
}

// records keeps what was logged.
type records struct {
	mu   sync.Mutex
	msgs []string // level and message
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }
func (r *records) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func errs(err error, n int) []error { return slices.Repeat([]error{err}, n) }

func TestServeBacksOffAndLogsEachEpisodeOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Two episodes: nine failures (past the 1 s cap), a connection,
		// two failures, a connection.
		script := append(errs(syscall.EMFILE, 9), nil)
		script = append(script, errs(syscall.ENFILE, 2)...)
		script = append(script, nil)
		ln := newFakeListener(script...)
		rec := &records{}
		handled := 0
		done := make(chan struct{})
		go func() {
			defer close(done)
			Serve(context.Background(), ln, slog.New(rec), "test socket", func(c net.Conn) { handled++; c.Close() })
		}()
		time.Sleep(time.Minute) // the fake clock: through the script
		synctest.Wait()         // and blocked in Accept after it
		ms := time.Millisecond
		want := []time.Duration{5 * ms, 10 * ms, 20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms, 640 * ms, time.Second, // episode 1
			0,               // after the connection, at once
			5 * ms, 10 * ms, // episode 2 starts from the bottom again
			0}
		if got := ln.gaps(); !slices.Equal(got, want) {
			t.Errorf("waits between accepts\n got %v\nwant %v", got, want)
		}
		wantLog := []string{
			"ERROR test socket: accept failed; retrying with backoff until it works (logged again only then)",
			"INFO test socket: accepting connections again",
			"ERROR test socket: accept failed; retrying with backoff until it works (logged again only then)",
			"INFO test socket: accepting connections again",
		}
		if got := rec.all(); !slices.Equal(got, wantLog) {
			t.Errorf("logged\n got %q\nwant %q", got, wantLog)
		}
		ln.Close()
		<-done
		if handled != 2 {
			t.Errorf("handled %d connections, want 2", handled)
		}
	})
}

// Closing the listener stops a Serve blocked in Accept; cancelling the
// context stops one waiting to retry, without waiting the backoff out.
func TestServeStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := newFakeListener()
		done := make(chan struct{})
		go func() {
			defer close(done)
			Serve(context.Background(), ln, slog.New(slog.DiscardHandler), "s", func(net.Conn) {})
		}()
		synctest.Wait()
		ln.Close()
		<-done
	})
	synctest.Test(t, func(t *testing.T) {
		ln := newFakeListener(errs(syscall.EMFILE, 100)...)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			Serve(ctx, ln, slog.New(slog.DiscardHandler), "s", func(net.Conn) {})
		}()
		time.Sleep(2 * time.Second) // in the 1 s waits now
		synctest.Wait()
		start := time.Now()
		cancel()
		<-done
		if d := time.Since(start); d != 0 {
			t.Errorf("stopped %v after the cancel, want at once", d)
		}
	})
}

// A real listener closed by its owner: Serve returns.
func TestServeStopsOnClose(t *testing.T) {
	ln, err := Listen(t.TempDir()+"/s", 0o600, -1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(context.Background(), ln, slog.New(slog.DiscardHandler), "s", func(c net.Conn) { c.Close() })
	}()
	ln.Close()
	<-done
}

// While accepting fails, the health says since when and why; once a
// connection is accepted again, it says nothing.
func TestServeReportsAFailingAcceptLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ln := newFakeListener(append(errs(syscall.EMFILE, 9), nil)...)
		var h AcceptHealth
		began := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			ServeReporting(context.Background(), ln, slog.New(slog.DiscardHandler), "s", &h, func(c net.Conn) { c.Close() })
		}()
		time.Sleep(100 * time.Millisecond) // within the failures' backoff
		if since, err := h.Failing(); !since.Equal(began) || err == nil {
			t.Fatalf("while failing: since %v (want %v), err %v", since, began, err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if since, err := h.Failing(); !since.IsZero() || err != nil {
			t.Fatalf("after a connection was accepted: since %v, err %v", since, err)
		}
		ln.Close()
		<-done
	})
}
