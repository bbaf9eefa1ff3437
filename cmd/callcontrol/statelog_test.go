package main

import (
	"testing"

	"github.com/callcontrol/callcontrol/internal/control"
)

// TestStateLogLine: the stats line says what each sync setting does.
func TestStateLogLine(t *testing.T) {
	for _, tc := range []struct {
		st   control.Stats
		want string
	}{
		{control.Stats{StateSync: true, StateLastSyncMS: 0.4, StateMaxSyncMS: 2}, "fsync 0.4 ms last, 2.0 ms max, 0 write errors"},
		{control.Stats{StateSync: false}, "not fsync'd (sync = no), 0 write errors"},
		{control.Stats{StateSync: false, StateFlushEveryMS: 20, StateUnflushedBytes: 1234, StateWriteErrors: 1},
			"written before each reply, flushed within 20 ms (sync = interval), 1234 bytes not flushed yet, 1 write error"},
	} {
		if got := stateLog(tc.st); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}
