// Package control is the operators' side door into a running callcontrold:
// a Unix stream socket speaking one JSON request per line and one JSON reply
// per line, and a client for it (used by cmd/callcontrol).
package control

import (
	"context"
	"encoding/json"
	"time"
)

// SessionInfo is one tracked call as operators see it.
type SessionInfo struct {
	CallID      string `json:"call_id"`
	Party       string `json:"party"`
	Destination string `json:"destination"`
	State       string `json:"state"` // "pending" or "in-progress"
	DialogID    string `json:"dialog_id,omitempty"`
	FromTag     string `json:"from_tag,omitempty"`
	SourceIP    string `json:"source_ip,omitempty"`
	Diverter    string `json:"diverter,omitempty"`
	Engine      string `json:"engine,omitempty"`
	Prepaid     bool   `json:"prepaid"`
	// Created and Answered are zero when not (yet) set; omitzero keeps
	// "0001-01-01T00:00:00Z" out of scripts' input.
	Created  time.Time `json:"created,omitzero"`
	Answered time.Time `json:"answered,omitzero"`
	// Limit is the time limit in seconds, -1 for none.
	Limit int `json:"limit"`
	// Remaining is the seconds left, -1 for none or not started.
	Remaining int `json:"remaining"`
	// EndAtAnswer, when set, says why the call (still ringing) is ended
	// the moment it is answered.
	EndAtAnswer string `json:"end_at_answer,omitempty"`
	// EndRequested is set for a call that is over (State "ending") whose
	// dialog end the proxy has not confirmed yet: since when it is asked.
	EndRequested time.Time `json:"end_requested,omitzero"`
}

// The outcomes of a terminate, in TerminateInfo.Outcome.
const (
	// TerminateEnded: the proxy confirmed; it sent BYE (or CANCEL) to both ends.
	TerminateEnded = "ended"
	// TerminateGone: the proxy no longer knew the dialog; the call is closed.
	TerminateGone = "gone"
	// TerminatePending: asked, not confirmed yet; journaled and retried.
	TerminatePending = "pending"
	// TerminateAtAnswer: ringing; ended the moment it is answered.
	TerminateAtAnswer = "at_answer"
	// TerminateFailed: the proxy cannot end it (Detail says why).
	TerminateFailed = "failed"
)

// TerminateInfo says what a terminate did.
type TerminateInfo struct {
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// PendingDialogEnd is a call ended whose dialog end the proxy has not
// confirmed.
type PendingDialogEnd struct {
	CallID     string  `json:"call_id"`
	DialogID   string  `json:"dialog_id,omitempty"`
	AgeSeconds float64 `json:"age_seconds"`
}

// Stats is a summary of the daemon's state.
type Stats struct {
	Sessions          map[string]int `json:"sessions"` // count by state
	Parties           int            `json:"parties"`
	EnginesUp         int            `json:"engines_up"`
	EnginesTotal      int            `json:"engines_total"`
	DebitsWaiting     int            `json:"debits_waiting"`
	DialogEndsPending int            `json:"dialog_ends_pending"`
	// DialogEndsOldestSeconds is the age of the oldest unconfirmed dialog
	// end (0 when none); DialogEnds lists the oldest few of them.
	DialogEndsOldestSeconds float64            `json:"dialog_ends_oldest_seconds"`
	DialogEnds              []PendingDialogEnd `json:"dialog_ends,omitempty"`
	// The state log: whether it fsyncs before replies, how long its
	// fsyncs take, and how many writes failed (a failing disk shows here).
	StateSync        bool    `json:"state_sync"`
	StateLastSyncMS  float64 `json:"state_last_sync_ms"`
	StateMaxSyncMS   float64 `json:"state_max_sync_ms"`
	StateWriteErrors uint64  `json:"state_write_errors"`
	// With sync = interval: the flush interval, and the bytes written
	// but not yet flushed (both absent otherwise).
	StateFlushEveryMS   float64 `json:"state_flush_every_ms,omitempty"`
	StateUnflushedBytes uint64  `json:"state_unflushed_bytes,omitempty"`
	// Calls answered while the state cannot be written are served from
	// memory, not durable: since when, and why (zero and empty when
	// everything is durable).
	StateNotDurableSince time.Time     `json:"state_not_durable_since,omitzero"`
	StateFault           string        `json:"state_fault,omitempty"`
	Uptime               time.Duration `json:"-"`
	Requests             uint64        `json:"requests"`
	Version              string        `json:"version"`

	// EngineSource says where the engine addresses come from: "config",
	// "default" (the original's cdrtool.<domain>, [CDRTool] address
	// absent) or "none" (no engine: calls flagged prepaid are refused).
	EngineSource string `json:"engine_source,omitempty"`
	// Engines is each configured engine's state now.
	Engines []EngineStatus `json:"engines,omitempty"`
	// ManagementSocket is the proxy's management socket as last checked
	// (at start and at reload).
	ManagementSocket *ManagementSocketStatus `json:"management_socket,omitempty"`
	// PrepaidRefused counts inits answered Error because no engine could
	// rate the call (none configured, unreachable, failing, too slow).
	PrepaidRefused uint64 `json:"prepaid_refused"`
}

// Engine states (EngineStatus.State).
const (
	EngineConnected   = "connected"   // a connection is open
	EngineIdle        = "idle"        // not connected now, no failure
	EngineUnreachable = "unreachable" // the last connect failed, or requests go unanswered: Cause says why
)

// EngineStatus is one rating engine's state.
type EngineStatus struct {
	Address string `json:"address"`
	State   string `json:"state"`
	Cause   string `json:"cause,omitempty"`
}

// Management socket states (ManagementSocketStatus.State).
const (
	SocketUnchecked = "unchecked" // the check has not finished yet
	SocketAnswering = "answering"
	SocketFailing   = "failing" // Cause says why
)

// ManagementSocketStatus is the result of the last check of the proxy's
// management socket: a harmless version request.
type ManagementSocketStatus struct {
	Path    string    `json:"path"`
	Proxy   string    `json:"proxy"` // "kamailio" or "opensips"
	State   string    `json:"state"`
	Cause   string    `json:"cause,omitempty"`
	Version string    `json:"version,omitempty"` // as the proxy reports it
	Checked time.Time `json:"checked,omitzero"`
}

// statsJSON carries Uptime as whole seconds: scripts should not have to know
// that Go durations are nanoseconds.
type statsJSON struct {
	statsAlias
	UptimeSeconds int64 `json:"uptime_seconds"`
}

type statsAlias Stats

// MarshalJSON encodes Uptime as uptime_seconds.
func (s Stats) MarshalJSON() ([]byte, error) {
	return json.Marshal(statsJSON{statsAlias: statsAlias(s), UptimeSeconds: int64(s.Uptime / time.Second)})
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (s *Stats) UnmarshalJSON(b []byte) error {
	var j statsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Stats(j.statsAlias)
	s.Uptime = time.Duration(j.UptimeSeconds) * time.Second
	return nil
}

// Backend is what the daemon's session manager offers the control socket.
// Its methods are called from the server's connection goroutines and must be
// safe for concurrent use.
type Backend interface {
	// Sessions calls f with the sessions whose party starts with
	// userPrefix ("" = all), oldest first, a chunk at a time: a listing
	// of 1,000,000 sessions is never held whole (see writeSessions). f
	// must keep no reference to the chunk. An error from f ends the
	// listing and is returned. When ctx is done (the asker went away),
	// waiting for the one listing slot or walking stops, and ctx's error
	// is returned.
	Sessions(ctx context.Context, userPrefix string, f func(chunk []SessionInfo) error) error
	Session(callID string) (SessionInfo, bool)
	// Terminate ends the call through the proxy and says how far that
	// went; false if the call is unknown.
	Terminate(callID string) (TerminateInfo, bool)
	Stats() Stats
	// Reload re-reads the configuration. restartNeeded names the changed
	// options that apply only at a restart; err means nothing was applied.
	Reload() (restartNeeded []string, err error)
	DebitsBackend
}

// DebitsBackend is the daemon's owed debits, for operators.
type DebitsBackend interface {
	Debits() []DebitInfo
	DebitsRetry() DebitsResult
	DebitsReroute(engine string) (DebitsResult, error)
	DebitsDrop(callID string) (DebitsResult, error)
}
