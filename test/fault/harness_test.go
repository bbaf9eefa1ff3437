package fault

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/proxy/proxytest"
	"github.com/callcontrol/callcontrol/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m, harness.Build{}) }

// seed returns the random seed of a test: $FAULT_SEED to replay a run,
// else a fresh one, logged either way.
func seed(t *testing.T) *rand.Rand {
	s := uint64(time.Now().UnixNano())
	if v := os.Getenv("FAULT_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("FAULT_SEED: %v", err)
		}
		s = n
	}
	t.Logf("random seed %d (replay with FAULT_SEED=%d)", s, s)
	return rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
}

// daemonConfig is what a test puts in config.ini.
type daemonConfig struct {
	PrepaidLimit int    // seconds
	Engine       string // [CDRTool] address
	RPCSocket    string // [Kamailio] socket_path
	Sync         string // [CallControl] sync; "" is yes
}

// daemon is callcontrold run as a process; it is started again (same
// directories, same state) after Stop or Kill.
type daemon struct{ *harness.Daemon }

func newDaemon(t *testing.T, cfg daemonConfig) *daemon {
	t.Helper()
	d := &daemon{harness.NewDaemon(t, harness.ShortDir(t, "ccf"))}
	// Generous deadlines: the machine is shared and noisy. check_interval
	// 1 and setup_time 8 let calls whose init reply was lost (the daemon
	// went down) be dropped quickly, as the proxy never starts them.
	d.WriteConfig(fmt.Sprintf(`[CallControl]
socket = %s
control_socket = %s
state_dir = %s
limit = None
prepaid_limit = %d
check_interval = 1
setup_time = 8
proxy_timeout = 2000
sync = %s

[CDRTool]
address = %s
timeout = 1000

[Kamailio]
socket_path = %s
`, d.Socket, d.Control, d.StateDir(), cfg.PrepaidLimit, cmp.Or(cfg.Sync, "yes"), cfg.Engine, cfg.RPCSocket))
	return d
}

// stats asks the control socket for the daemon's stats into v.
func (d *daemon) stats(v any) error {
	line, err := d.ControlRequest(`{"v":1,"cmd":"stats"}`)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("stats: %q (%v)", line, err)
	}
	return nil
}

// debitsWaiting asks the control socket how many debits the daemon still
// owes.
func (d *daemon) debitsWaiting() (int, error) {
	var resp struct {
		OK    bool `json:"ok"`
		Stats *struct {
			DebitsWaiting int `json:"debits_waiting"`
		} `json:"stats"`
	}
	if err := d.stats(&resp); err != nil {
		return 0, err
	}
	if !resp.OK || resp.Stats == nil {
		return 0, fmt.Errorf("stats: %+v", resp)
	}
	return resp.Stats.DebitsWaiting, nil
}

// newProxyPool is the fake proxy: n connections, strictly one request then
// its reply on each, like the call_control module's workers.
func newProxyPool(t *testing.T, path string, n int) *proxytest.Pool {
	p := proxytest.NewPool(path, n)
	t.Cleanup(p.Close)
	return p
}
