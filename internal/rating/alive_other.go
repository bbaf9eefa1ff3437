//go:build !linux

package rating

import "net"

// peerAlive cannot peek portably here; a dead connection is then found by
// the request itself (with its fate unknown).
func peerAlive(net.Conn) bool { return true }
