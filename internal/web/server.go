// Package web is callcontrold's optional HTTP side door: the live calls
// page, a JSON API, Prometheus metrics and health checks. Like the control
// socket it reaches the daemon only through control.Backend.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/callcontrol/callcontrol/internal/config"
	"github.com/callcontrol/callcontrol/internal/control"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/crypto/bcrypt"
)

// Options configure a Server.
type Options struct {
	// Listen is host:port. A host other than loopback needs User and
	// PasswordHash.
	Listen       string
	User         string
	PasswordHash string // bcrypt
	Backend      control.Backend
	// Ready lists what keeps the daemon from serving calls (empty: ready);
	// nil means always ready.
	Ready func() []string
	// Metrics is served on /metrics; nil: no /metrics.
	Metrics prometheus.Gatherer
	Log     *slog.Logger
}

// Server is a running HTTP listener. Create it with New, run Serve in a
// goroutine, stop it with Close.
type Server struct {
	opts Options
	ln   net.Listener
	srv  *http.Server
	auth atomic.Pointer[auth] // nil: no authentication
	// csrfKey signs the page's form token: a cross-site page cannot read
	// it, so it cannot forge a terminate.
	csrfKey []byte
	log     *slog.Logger
}

// New checks the options and listens. It refuses, saying why, a listener
// other machines can reach without authentication.
func New(o Options) (*Server, error) {
	if o.Backend == nil {
		return nil, errors.New("web: nil backend")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	host, _, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("[HTTP] listen = %q: must be host:port", o.Listen)
	}
	if !config.IsLoopback(host) && o.User == "" {
		return nil, fmt.Errorf("[HTTP] listen = %q is reachable from other machines and no user/password_hash is set: "+
			"anyone could end calls; set user and password_hash, or listen on 127.0.0.1", o.Listen)
	}
	s := &Server{opts: o, log: o.Log, csrfKey: make([]byte, 32)}
	rand.Read(s.csrfKey)
	if err := s.SetAuth(o.User, o.PasswordHash); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("[HTTP] listen = %q: %w", o.Listen, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the address the listener is bound to (with the real port when
// Listen asked for port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Listen is the configured address.
func (s *Server) Listen() string { return s.opts.Listen }

// Serve serves until Close.
func (s *Server) Serve() {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("http: serve failed", "listen", s.opts.Listen, "err", err)
	}
}

// Close stops accepting, lets requests in flight finish for a moment, then
// closes what remains.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// SetAuth replaces the credentials (reload); user "" turns authentication
// off, which New refuses on a public address.
func (s *Server) SetAuth(user, hash string) error {
	if user == "" {
		host, _, _ := net.SplitHostPort(s.opts.Listen)
		if !config.IsLoopback(host) {
			return fmt.Errorf("[HTTP] listen = %q is reachable from other machines: user and password_hash cannot be removed", s.opts.Listen)
		}
		s.auth.Store(nil)
		return nil
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return fmt.Errorf("[HTTP] password_hash: not a bcrypt hash: %v", err)
	}
	s.auth.Store(&auth{user: user, hash: []byte(hash), slots: make(chan struct{}, 1)})
	return nil
}

// auth checks HTTP basic credentials against a bcrypt hash.
type auth struct {
	user string
	hash []byte
	// good remembers the SHA-256 of the last credentials bcrypt accepted:
	// the page polls every few seconds, and bcrypt costs ~100 ms of CPU on
	// a machine that also answers the proxy.
	good atomic.Pointer[[sha256.Size]byte]
	// slots lets one bcrypt run at a time, so a flood of wrong passwords
	// costs at most one core.
	slots chan struct{}
}

func (a *auth) check(user, password string) bool {
	sum := sha256.Sum256([]byte(user + "\x00" + password))
	if g := a.good.Load(); g != nil && subtle.ConstantTimeCompare(g[:], sum[:]) == 1 {
		return true
	}
	a.slots <- struct{}{}
	defer func() { <-a.slots }()
	ok := bcrypt.CompareHashAndPassword(a.hash, []byte(password)) == nil
	ok = subtle.ConstantTimeCompare([]byte(user), []byte(a.user)) == 1 && ok
	if ok {
		a.good.Store(&sum)
	}
	return ok
}

// authorized answers 401 and returns false when credentials are needed
// and missing or wrong.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	a := s.auth.Load()
	if a == nil {
		return true
	}
	user, password, ok := r.BasicAuth()
	if ok && a.check(user, password) {
		return true
	}
	if ok {
		s.log.Warn("http: wrong user or password", "remote", r.RemoteAddr, "user", user)
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="callcontrol", charset="UTF-8"`)
	writeError(w, http.StatusUnauthorized, control.CodeDenied, "user and password required")
	return false
}

// csrfToken is the form token the page carries; it changes with the
// process, so a token seen before a restart no longer works.
func (s *Server) csrfToken() string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte("terminate"))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) validToken(t string) bool {
	return hmac.Equal([]byte(t), []byte(s.csrfToken()))
}

// Handler routes every path. Everything but the health checks needs
// authentication when it is configured; every state change is refused
// when a browser says it comes from another site.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	authed := func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.authorized(w, r) {
				h(w, r)
			}
		})
	}
	mux.Handle("/{$}", authed(s.page))
	mux.Handle("/terminate", authed(s.terminateForm))
	mux.Handle("/assets/", authed(s.assets))
	mux.Handle("/api/v1/sessions", authed(s.apiSessions))
	mux.Handle("/api/v1/stats", authed(s.apiStats))
	mux.Handle("/api/", authed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, control.CodeBadRequest, "no such API path: "+r.URL.Path)
	}))
	if s.opts.Metrics != nil {
		metrics := promhttp.HandlerFor(s.opts.Metrics, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn), MaxRequestsInFlight: 4,
		})
		mux.Handle("/metrics", authed(func(w http.ResponseWriter, r *http.Request) {
			if allow(w, r, http.MethodGet) {
				metrics.ServeHTTP(w, r)
			}
		}))
	}
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/readyz", s.readyz)

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Warn("http: cross-site request refused", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"))
		writeError(w, http.StatusForbidden, control.CodeDenied, "cross-site request refused")
	}))
	// A Call-ID may hold "/", "//" and "/../" (RFC 3261 word): the mux
	// would redirect such a path to a cleaned one, another call's, so
	// one call's URL is routed here, before the mux cleans it.
	oneSession := authed(s.apiSession)
	routes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r) {
			s.log.Warn("http: request for a foreign host name refused", "remote", r.RemoteAddr, "host", r.Host, "path", r.URL.Path)
			writeError(w, http.StatusForbidden, control.CodeDenied, fmt.Sprintf(
				"Host %q refused: without [HTTP] user/password_hash only an IP address or localhost is served (a web page could reach the daemon through DNS rebinding); a reverse proxy must pass the upstream's Host, or set user and password_hash", r.Host))
			return
		}
		if strings.HasPrefix(r.URL.Path, sessionPrefix) {
			oneSession.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	return securityHeaders(cop.Handler(routes))
}

// hostAllowed guards a listener without authentication against DNS
// rebinding: a web page whose own name is made to resolve to 127.0.0.1 is
// same-origin for the browser, so only the Host header tells its requests
// apart. Without credentials, only an IP address, localhost or the
// configured listen host is served; the health checks answer any name.
func (s *Server) hostAllowed(r *http.Request) bool {
	if s.auth.Load() != nil || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
		return true
	}
	host := r.Host // empty only from non-browser HTTP/1.0 clients
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	listen, _, _ := net.SplitHostPort(s.opts.Listen)
	return net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") ||
		(listen != "" && host == strings.ToLower(listen))
}

// sessionPrefix starts the URL of one session: the rest is its Call-ID.
const sessionPrefix = "/api/v1/sessions/"

// securityHeaders keeps the page out of frames (clickjacking a terminate
// button) and pins its scripts and styles to the daemon itself.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		h.ServeHTTP(w, r)
	})
}

// allow answers 405 unless r uses one of methods (HEAD goes with GET).
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
			return true
		}
	}
	allowed := ""
	for i, m := range methods {
		if i > 0 {
			allowed += ", "
		}
		allowed += m
	}
	w.Header().Set("Allow", allowed)
	writeError(w, http.StatusMethodNotAllowed, control.CodeBadRequest, fmt.Sprintf("method %s not allowed here (allowed: %s)", r.Method, allowed))
	return false
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok: callcontrold is running")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	var problems []string
	if s.opts.Ready != nil {
		problems = s.opts.Ready()
	}
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, p := range problems {
			fmt.Fprintln(w, "not ready:", p)
		}
		return
	}
	fmt.Fprintln(w, "ready: the proxy socket is served and the state log writes")
}
