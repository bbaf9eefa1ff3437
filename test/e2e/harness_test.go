// Package e2e runs callcontrold against a real Kamailio and real sipp
// endpoints on loopback, as processes started by test/harness (shared with
// test/fault). The helpers here (ports) are shared by every end-to-end
// test; kamailio_test.go, opensips_test.go, daemon_test.go and sipp_test.go
// start the peers.
package e2e

import (
	"math/rand/v2"
	"net"
	"testing"

	"github.com/callcontrol/callcontrol/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m, harness.Build{Race: true}) }

// requirePeers is called first by every test that needs Kamailio and sipp.
func requirePeers(t testing.TB) {
	t.Helper()
	harness.RequireTool(t, "kamailio", "kamailio")
	harness.RequireTool(t, "sipp", "sip-tester")
}

// udpPortFree reports whether 127.0.0.1:port can be bound now.
func udpPortFree(port int) bool {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// freePortBlock returns a base port such that base..base+n-1 are all free on
// 127.0.0.1 (UDP). Random bases keep parallel runs of the suite (other
// engineers, CI) apart; the range stays below Linux's ephemeral ports
// (32768 and up), which any process may be given at any moment.
func freePortBlock(t testing.TB, n int) int {
	t.Helper()
	for range 200 {
		base := 20000 + rand.IntN(12000)
		ok := true
		for p := base; p < base+n && ok; p++ {
			ok = udpPortFree(p)
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no block of %d free UDP ports found on 127.0.0.1", n)
	return 0
}
