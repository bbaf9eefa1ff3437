package ratingtest

import "strings"

// Handle serves one request in the calling goroutine, as if one socket
// read had carried it, and returns the reply without its final empty line
// ("" when hanging or stopped). It shares the engine's single-threaded
// state with the TCP clients: the balances and sessions of one account are
// the same whichever connection, or daemon, asks. Tests running on a fake
// clock (testing/synctest) use it, as a TCP round trip is not something a
// synctest bubble can wait for, and set SetClock(time.Now) inside the
// bubble so the engine's sessions age with the daemons' timers.
func (e *Engine) Handle(request string) string {
	e.mu.Lock()
	stopped := e.stopped
	e.mu.Unlock()
	reply, ok := e.request(request, stopped)
	if !ok {
		return ""
	}
	return strings.TrimRight(reply, "\n")
}

// Count is how many requests starting with command (case-insensitive,
// e.g. "MaxSessionTime") the engine received.
func (e *Engine) Count(command string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, r := range e.requests {
		if len(r) >= len(command) && strings.EqualFold(r[:len(command)], command) {
			n++
		}
	}
	return n
}
