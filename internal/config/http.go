package config

import (
	"fmt"
	"net"
	"strings"
)

// HTTP is the [HTTP] section: the optional web page, JSON API and
// Prometheus metrics.
type HTTP struct {
	Listen string // host:port; "" = off
	// User and PasswordHash turn on HTTP basic authentication. The hash is
	// bcrypt ($2a$/$2b$/$2y$): the file never holds a clear-text password.
	User         string
	PasswordHash string
}

// Enabled reports whether the listener is configured.
func (h HTTP) Enabled() bool { return h.Listen != "" }

// Auth reports whether basic authentication is configured.
func (h HTTP) Auth() bool { return h.User != "" }

// IsLoopback reports whether host (from a listen address) only ever
// accepts connections from this machine. An empty host means every
// address, which is not loopback.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (p *parser) http(c *Config) {
	const s = "HTTP"
	h := &c.HTTP
	p.str(s, "user", &h.User)
	if e, ok := p.get(s, "password_hash"); ok && e.value != "" {
		if !looksBcrypt(e.value) {
			p.fail(s, e, "must be a bcrypt hash ($2y$..., 60 characters, e.g. from 'htpasswd -nbB user password'), never the password itself")
			return
		}
		h.PasswordHash = e.value
	}
	if (h.User == "") != (h.PasswordHash == "") {
		e, _ := p.get(s, "user")
		e.name = "user" // named even when absent from the file
		if h.User != "" {
			e, _ = p.get(s, "password_hash")
			e.name = "password_hash"
		}
		p.fail(s, e, "user and password_hash go together: set both for basic authentication, or neither")
		return
	}
	e, ok := p.get(s, "listen")
	if !ok || e.value == "" {
		return
	}
	host, port, err := splitListen(e.value)
	if err != nil {
		p.fail(s, e, "must be host:port, e.g. 127.0.0.1:9080")
		return
	}
	if !IsLoopback(host) && !h.Auth() {
		p.fail(s, e, "is reachable from other machines and no user/password_hash is set: anyone could end calls. "+
			"Set user and password_hash, or listen on 127.0.0.1")
		return
	}
	h.Listen = net.JoinHostPort(host, port)
}

// looksBcrypt accepts the modular crypt form bcrypt writes.
func looksBcrypt(s string) bool {
	return len(s) == 60 && (strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$"))
}

func (h HTTP) summary() string {
	if !h.Enabled() {
		return ", http off"
	}
	auth := "no auth"
	if h.Auth() {
		auth = fmt.Sprintf("basic auth user %s", h.User)
	}
	return fmt.Sprintf(", http on %s (%s)", h.Listen, auth)
}
