package e2e

// Proxy is the SIP proxy a Stack puts in front of the daemon: Kamailio
// (kamailio_test.go) or OpenSIPS (opensips_test.go). A case written against
// it and the Stack runs on either.
type Proxy interface {
	// Name is the proxy's name in messages: "kamailio", "opensips 3.6.8".
	Name() string
	// Addr is the proxy's SIP address, for sipp's -rsa.
	Addr() string
	// LogLines returns the lines of the proxy's log that contain sub.
	LogLines(sub string) []string
}
