package daemon

import (
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/config"
	"github.com/callcontrol/callcontrol/internal/store"
)

// TestStateOptions: each [CallControl] sync setting opens the state log
// with the durability it documents.
func TestStateOptions(t *testing.T) {
	for _, tc := range []struct {
		sync config.SyncMode
		want store.Options
	}{
		{config.SyncYes, store.Options{}},
		{config.SyncNo, store.Options{NoSync: true}},
		{config.SyncInterval, store.Options{NoSync: true, FlushEvery: 35 * time.Millisecond}},
	} {
		got := stateOptions(config.CallControl{Sync: tc.sync, SyncInterval: 35 * time.Millisecond})
		if got.NoSync != tc.want.NoSync || got.FlushEvery != tc.want.FlushEvery || got.OnSync != nil {
			t.Errorf("sync = %s: %+v, want %+v", tc.sync, got, tc.want)
		}
	}
}
