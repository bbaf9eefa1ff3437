// Package dialog ends SIP dialogs through the proxy's management interface:
// Kamailio's jsonrpcs or OpenSIPS' mi_datagram, both JSON-RPC 2.0 over a
// Unix datagram socket (see spec/dialog-termination.md).
//
// End requests are queued without blocking the caller and sent without
// waiting for answers, which are matched by id. None is given up: a send
// refused because the proxy's receive queue is full (or its socket is
// missing) is retried with backoff, and a request not answered OK or "not
// found" is sent again with growing waits. Only those two answers are
// final; the caller (the daemon's state log) keeps its record until then.
package dialog
