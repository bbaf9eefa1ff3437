// Package fault holds the fault and crash tests of callcontrold: the real
// daemon binary, run as a process (test/harness), driven by a minimal client
// of the proxy protocol (internal/proxy/proxytest, which does not use
// internal/proxy, so the daemon's own parser is not trusted to check
// itself), against the fake rating engine
// (internal/rating/ratingtest) and a fake Kamailio JSON-RPC socket
// (internal/dialog/dialogtest) that sends `stop` like real Kamailio does.
//
// The tests only assert what must hold whatever the timing: every call
// answered Limited and started is debited exactly once, for the time the
// client measured (or exactly its limit when the daemon ended it), across
// rating engine outages, daemon restarts and kill -9.
package fault
