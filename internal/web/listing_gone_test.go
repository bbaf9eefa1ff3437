package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/control/controltest"
)

// syncLog is a logger's output, read while the server writes it.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A page or API listing that waits for the daemon's one listing slot
// (another big listing runs) stops waiting when its client goes away, and
// is not logged as a failed listing: nobody is there to answer.
func TestListingStopsWaitingWhenTheClientGoes(t *testing.T) {
	fake := fakeBackend()
	w := controltest.NewListingWatch(fake)
	logs := &syncLog{}
	s, err := New(Options{Listen: "127.0.0.1:0", Backend: w,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	s.ln.Close() // httptest serves the handler instead
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)

	// A big listing in progress. Released at the latest before ts
	// closes (cleanups run last first), which waits for the handlers.
	release := sync.OnceFunc(fake.HoldListing())
	t.Cleanup(release)
	for i, path := range []string{"/api/v1/sessions", "/", "/?state=pending"} {
		ctx, cancel := context.WithCancel(context.Background())
		r, err := http.NewRequestWithContext(ctx, "GET", ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		clientDone := make(chan struct{})
		go func() {
			defer close(clientDone)
			if resp, err := ts.Client().Do(r); err == nil {
				resp.Body.Close()
				t.Errorf("%s: answered %s while the listing slot was held", path, resp.Status)
			}
		}()
		<-w.Entered // waiting for the slot
		cancel()    // the client goes away
		select {
		case err := <-w.Returned:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: the listing returned %v, want the request's context canceled", path, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: still waiting for the listing slot 20 s after the client went away", path)
		}
		<-clientDone
		gone := "client went away before its listing was done"
		for deadline := time.Now().Add(20 * time.Second); strings.Count(logs.String(), gone) <= i; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no %q logged:\n%s", path, gone, logs)
			}
		}
	}
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a client gone was logged as a failure:\n%s", logs)
	}
	if strings.Contains(logs.String(), "level=INFO") {
		t.Errorf("a client gone was logged as served:\n%s", logs)
	}

	// The slot was not taken by the listings given up: the next one runs.
	release()
	resp, body := do(t, ts, req{method: "GET", path: "/api/v1/sessions"})
	<-w.Entered
	if err := <-w.Returned; err != nil || resp.StatusCode != 200 || !strings.Contains(body, `"call_id"`) {
		t.Fatalf("after the slot was released: %d %v %.200s", resp.StatusCode, err, body)
	}
}
