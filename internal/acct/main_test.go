package acct

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/acct/accttest"
)

// testDB is the throwaway MariaDB shared by this package's tests, started
// by the first test that needs it (needDB) and stopped by TestMain; dbErr
// says why there is none.
//
// Not started up front: go test -fuzz runs TestMain in the coordinator
// and in every fuzz worker, and the fuzz targets use no database. Each
// worker then created and started its own server (about 15 s of CPU on
// a loaded 2-core machine before it fuzzed anything) and, once fuzzing
// was over, had 1 s to stop it before the coordinator killed it, taking
// the server with it and leaving its data directory behind; the server,
// started by the worker, also held the worker's pipes to the
// coordinator open. A run that only fuzzes now starts none.
var (
	dbOnce sync.Once
	testDB *accttest.MariaDB
	dbErr  error
	dbDir  string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	defer func() {
		if testDB != nil {
			testDB.Stop()
		}
		if dbDir != "" {
			os.RemoveAll(dbDir)
		}
	}()
	return m.Run()
}

// startDB starts testDB, once, for the whole run.
func startDB() {
	if err := accttest.Available(); err != nil {
		dbErr = fmt.Errorf("package internal/acct: %w", err)
		return
	}
	dir, err := os.MkdirTemp("", "accttest")
	if err != nil {
		dbErr = err
		return
	}
	dbDir = dir
	testDB, dbErr = accttest.StartMariaDB(dir)
	if dbErr != nil {
		dbErr = fmt.Errorf("package internal/acct: %w", dbErr)
	}
}

// needDB starts the shared MariaDB if no test did yet, and skips (or fails
// under CI) when there is none.
func needDB(t *testing.T) *accttest.MariaDB {
	t.Helper()
	dbOnce.Do(startDB)
	accttest.Require(t, dbErr)
	return testDB
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fakeTracker is the session layer: End forgets the call and records it.
type fakeTracker struct {
	mu     sync.Mutex
	calls  []Call
	closed []Outcome
}

func newTracker(calls ...Call) *fakeTracker {
	calls = append([]Call(nil), calls...) // End edits it in place
	for i := range calls {
		if calls[i].Since.IsZero() {
			calls[i].Since = time.Now().Add(-time.Minute)
		}
	}
	return &fakeTracker{calls: calls}
}

func (f *fakeTracker) TrackedCalls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

func (f *fakeTracker) End(o Outcome) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.calls {
		if c.CallID == o.CallID && (o.FromTag == "" || c.FromTag == o.FromTag) {
			f.calls = append(f.calls[:i], f.calls[i+1:]...)
			o.FromTag = c.FromTag
			f.closed = append(f.closed, o)
			return true
		}
	}
	return false
}

// Closed returns the outcomes so far, sorted by Call-ID.
func (f *fakeTracker) Closed() []Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]Outcome(nil), f.closed...)
	sort.Slice(out, func(i, j int) bool { return out[i].CallID < out[j].CallID })
	return out
}

// waitClosed waits (generously) until n calls were closed.
func (f *fakeTracker) waitClosed(t *testing.T, n int) []Outcome {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := f.Closed()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}
