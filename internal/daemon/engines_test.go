package daemon

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/config"
)

// TestEngineTimeout: MaxSessionTime gets [CDRTool] timeout as the proxy's
// time budget cuts it, at start and at reload; the daemon warns about the
// cut only for the default engine, which the configuration's own warning
// could not know of.
func TestEngineTimeout(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name          string
		proxy, engine time.Duration
		addressSet    bool
		want          time.Duration
		warn          bool
	}{
		{"defaults", 500 * ms, 300 * ms, true, 300 * ms, false},
		{"cut, configured engine: the configuration warned", 500 * ms, 450 * ms, true, 400 * ms, false},
		{"cut, default engine", 500 * ms, 450 * ms, false, 400 * ms, true},
		{"long proxy_timeout", 2 * time.Second, 1700 * ms, true, 1600 * ms, false},
		{"long proxy_timeout, engine under the cut", 2 * time.Second, time.Second, true, time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logged bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logged, nil))
			cfg := config.Default(t.TempDir())
			cfg.CDRTool.Addresses, cfg.CDRTool.AddressSet = []string{"127.0.0.1:9"}, tt.addressSet
			cfg.CallControl.ProxyTimeout, cfg.CDRTool.Timeout = tt.proxy, tt.engine
			e := newEngines(cfg, log)
			defer e.close()
			if got := time.Duration(e.timeout.Load()); got != tt.want {
				t.Errorf("MaxSessionTime timeout %v, want %v", got, tt.want)
			}
			if warned := strings.Contains(logged.String(), "capped"); warned != tt.warn {
				t.Errorf("warned %v, want %v: %s", warned, tt.warn, logged.String())
			}

			// A reload to the defaults applies the default's timeout.
			e.reload(config.Default(t.TempDir()))
			if got := time.Duration(e.timeout.Load()); got != 300*ms {
				t.Errorf("after reload: %v, want 300ms", got)
			}
		})
	}
}
