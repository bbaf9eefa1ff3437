// Package controltest provides a fake control.Backend for tests of the
// control socket and its clients.
package controltest

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/callcontrol/callcontrol/internal/control"
)

// Backend is an in-memory control.Backend. Set its fields before use; read
// Terminated and Reloads through their methods while a server runs.
type Backend struct {
	mu            sync.Mutex
	sessions      map[string]control.SessionInfo
	stats         control.Stats
	reloadErr     error
	restartNeeded []string
	debits        []control.DebitInfo
	rerouteFails  error // SetRerouteWriteFails
	terminated    []string
	reloads       int
	outcome       *control.TerminateInfo
	// listing is the one listing slot, as the daemon's session table
	// has: one listing runs at a time.
	listing chan struct{}
}

// HoldListing takes the listing slot, as a big listing in progress does,
// until release is called: Sessions waits for it meanwhile.
func (b *Backend) HoldListing() (release func()) {
	b.listing <- struct{}{}
	return func() { <-b.listing }
}

// SetTerminateOutcome makes Terminate of a known call answer ti instead of
// "ended".
func (b *Backend) SetTerminateOutcome(ti control.TerminateInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.outcome = &ti
}

// New returns a Backend holding sessions and answering stats.
func New(stats control.Stats, sessions ...control.SessionInfo) *Backend {
	b := &Backend{sessions: make(map[string]control.SessionInfo), stats: stats, listing: make(chan struct{}, 1)}
	for _, s := range sessions {
		b.sessions[s.CallID] = s
	}
	return b
}

// SetReloadError makes Reload fail with err (nil: succeed).
func (b *Backend) SetReloadError(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reloadErr = err
}

// Chunk is how many sessions Sessions passes at a time: small, so tests
// of a few sessions cross chunk boundaries as a big listing does.
const Chunk = 2

// Sessions implements control.Backend, ordered by Call-ID, Chunk sessions
// at a time, outside the lock (as the daemon's walk calls f). It waits for
// the listing slot as the daemon does: see HoldListing.
func (b *Backend) Sessions(ctx context.Context, prefix string, f func([]control.SessionInfo) error) error {
	select {
	case b.listing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-b.listing }()
	b.mu.Lock()
	var out []control.SessionInfo
	for _, s := range b.sessions {
		if strings.HasPrefix(s.Party, prefix) {
			out = append(out, s)
		}
	}
	b.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CallID < out[j].CallID })
	for chunk := range slices.Chunk(out, Chunk) {
		if err := f(chunk); err != nil {
			return err
		}
	}
	return nil
}

// Session implements control.Backend.
func (b *Backend) Session(callID string) (control.SessionInfo, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sessions[callID]
	return s, ok
}

// Terminate implements control.Backend: it forgets the session, as if the
// proxy confirmed its end at once.
func (b *Backend) Terminate(callID string) (control.TerminateInfo, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.sessions[callID]; !ok {
		return control.TerminateInfo{}, false
	}
	delete(b.sessions, callID)
	b.terminated = append(b.terminated, callID)
	if b.outcome != nil {
		return *b.outcome, true
	}
	return control.TerminateInfo{Outcome: control.TerminateEnded}, true
}

// Stats implements control.Backend.
func (b *Backend) Stats() control.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// SetRestartNeeded makes Reload report these options as needing a restart.
func (b *Backend) SetRestartNeeded(options ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.restartNeeded = options
}

// Reload implements control.Backend.
func (b *Backend) Reload() ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reloads++
	if b.reloadErr != nil {
		return nil, b.reloadErr
	}
	return b.restartNeeded, nil
}

// Terminated returns the Call-IDs terminated so far, in order.
func (b *Backend) Terminated() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.terminated...)
}

// Reloads returns how many times Reload was called.
func (b *Backend) Reloads() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reloads
}

// SetDebits sets the owed debits the backend lists.
func (b *Backend) SetDebits(debits ...control.DebitInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.debits = slices.Clone(debits) // reroute and drop change them in place
}

// Debits implements control.Backend.
func (b *Backend) Debits() []control.DebitInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]control.DebitInfo(nil), b.debits...)
}

// DebitsRetry implements control.Backend.
func (b *Backend) DebitsRetry() control.DebitsResult {
	b.mu.Lock()
	defer b.mu.Unlock()
	return control.DebitsResult{Affected: len(b.debits)}
}

// DebitsReroute implements control.Backend: debits owed to engine move to
// "new-engine:9024".
func (b *Backend) DebitsReroute(engine string) (control.DebitsResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for i := range b.debits {
		if b.debits[i].Engine == engine {
			b.debits[i].Engine, b.debits[i].Configured = "new-engine:9024", true
			n++
		}
	}
	if b.rerouteFails != nil {
		return control.DebitsResult{NotWritten: n, WriteError: b.rerouteFails.Error()}, nil
	}
	return control.DebitsResult{Affected: n}, nil
}

// SetRerouteWriteFails plays a state log that fails: reroute moves the
// debits in memory only and says so (NotWritten, WriteError).
func (b *Backend) SetRerouteWriteFails(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rerouteFails = err
}

// DebitsDrop implements control.Backend.
func (b *Backend) DebitsDrop(callID string) (control.DebitsResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := b.debits[:0]
	for _, d := range b.debits {
		if d.CallID != callID {
			kept = append(kept, d)
		}
	}
	n := len(b.debits) - len(kept)
	b.debits = kept
	return control.DebitsResult{Affected: n}, nil
}

// ListingWatch is a Backend that tells a test when a listing asked it
// (Entered) and what its Sessions returned (Returned).
type ListingWatch struct {
	*Backend
	Entered  chan struct{}
	Returned chan error
}

// NewListingWatch watches the listings of b.
func NewListingWatch(b *Backend) *ListingWatch {
	return &ListingWatch{Backend: b, Entered: make(chan struct{}, 8), Returned: make(chan error, 8)}
}

// Sessions implements control.Backend: b's, announced and reported.
func (w *ListingWatch) Sessions(ctx context.Context, prefix string, f func([]control.SessionInfo) error) error {
	w.Entered <- struct{}{}
	err := w.Backend.Sessions(ctx, prefix, f)
	w.Returned <- err
	return err
}
