// Package control is the operators' side door into a running callcontrold:
// a Unix stream socket speaking one JSON request per line and one JSON reply
// per line, and a client for it (used by cmd/callcontrol).
package control

import (
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
}

// Stats is a summary of the daemon's state.
type Stats struct {
	Sessions          map[string]int `json:"sessions"` // count by state
	Parties           int            `json:"parties"`
	EnginesUp         int            `json:"engines_up"`
	EnginesTotal      int            `json:"engines_total"`
	DebitsWaiting     int            `json:"debits_waiting"`
	DialogEndsPending int            `json:"dialog_ends_pending"`
	// The state log: whether it fsyncs before replies, how long its
	// fsyncs take, and how many writes failed (a failing disk shows here).
	StateSync        bool    `json:"state_sync"`
	StateLastSyncMS  float64 `json:"state_last_sync_ms"`
	StateMaxSyncMS   float64 `json:"state_max_sync_ms"`
	StateWriteErrors uint64  `json:"state_write_errors"`
	// Calls answered while the state cannot be written are served from
	// memory, not durable: since when, and why (zero and empty when
	// everything is durable).
	StateNotDurableSince time.Time     `json:"state_not_durable_since,omitzero"`
	StateFault           string        `json:"state_fault,omitempty"`
	Uptime               time.Duration `json:"-"`
	Requests             uint64        `json:"requests"`
	Version              string        `json:"version"`
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
	// Sessions lists the sessions whose party starts with userPrefix ("" = all).
	Sessions(userPrefix string) []SessionInfo
	Session(callID string) (SessionInfo, bool)
	// Terminate ends the call through the proxy; false if it is unknown.
	Terminate(callID string) bool
	Stats() Stats
	// Reload re-reads the configuration.
	Reload() error
}
