// Package dialog ends SIP dialogs through the proxy's management interface:
// Kamailio's jsonrpcs or OpenSIPS' mi_datagram, both JSON-RPC 2.0 over a
// Unix datagram socket (see spec/dialog-termination.md).
//
// End requests are queued without blocking the caller and are never dropped
// silently: a send refused because the proxy's receive queue is full is
// retried with backoff, and every outcome is logged with the Call-ID.
package dialog
