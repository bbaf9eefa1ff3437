package daemon

import (
	"github.com/callcontrol/callcontrol/internal/config"
	"github.com/callcontrol/callcontrol/internal/store"
)

// stateOptions is the state log's durability for [CallControl] sync.
func stateOptions(cc config.CallControl) store.Options {
	switch cc.Sync {
	case config.SyncYes:
		return store.Options{}
	case config.SyncNo:
		return store.Options{NoSync: true}
	}
	return store.Options{NoSync: true, FlushEvery: cc.SyncInterval}
}
