package acct

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2866"
)

// Non-standard plain attributes. The SIP ones have two numberings:
// FreeRADIUS's dictionary.openser (Kamailio's too) and OpenSIPS's own
// dictionary.opensips, which an OpenSIPS sending accounting must use: its
// acc module needs Sip-Call-Duration and the other CDR attributes, which
// dictionary.openser lacks.
const (
	attrSipMethod       radius.Type = 101
	attrSipResponseCode radius.Type = 102
	attrSipToTag        radius.Type = 104
	attrSipFromTag      radius.Type = 105
	// dictionary.opensips (OpenSIPS 3.x etc/).
	attrOpenSIPSSipMethod  radius.Type = 204
	attrOpenSIPSSipFromTag radius.Type = 206
	attrOpenSIPSSipToTag   radius.Type = 207
	// attrSipCallDuration is where OpenSIPS's acc module puts a CDR's
	// duration (dictionary.opensips, 227); it sends no Acct-Session-Time.
	attrSipCallDuration radius.Type = 227
	// attrMediaInfo is MediaProxy's Media-Info (its radius/dictionary,
	// 234): "timeout" when the media stopped.
	attrMediaInfo radius.Type = 234
)

// acctRecord is what a Stop tells us.
type acctRecord struct {
	status      rfc2866.AcctStatusType
	callID      string
	fromTag     string
	hasFromTag  bool
	toTag       string
	sessionTime int    // DurationUnknown when the packet carries none
	sipMethod   uint32 // Sip-Method, the proxy's method bit; 0 when absent or malformed
	// mediaTimeout: MediaProxy's Media-Info says "timeout".
	mediaTimeout bool
}

// sipMethodCancel is Sip-Method's value for CANCEL (METHOD_CANCEL in
// OpenSIPS's and Kamailio's parser/msg_parser.h).
const sipMethodCancel = 2

// extractRecord reads the attributes we use from an Accounting-Request.
// A missing or malformed Acct-Status-Type yields status 0, which is ignored.
func extractRecord(p *radius.Packet) acctRecord {
	var r acctRecord
	if v, err := rfc2866.AcctStatusType_Lookup(p); err == nil {
		r.status = v
	}
	r.callID = rfc2866.AcctSessionID_GetString(p)
	if v, ok := lookupEither(p, attrSipFromTag, attrOpenSIPSSipFromTag); ok {
		r.fromTag, r.hasFromTag = radius.String(v), true
	}
	if v, ok := lookupEither(p, attrSipToTag, attrOpenSIPSSipToTag); ok {
		r.toTag = radius.String(v)
	}
	if v, ok := lookupEither(p, attrSipMethod, attrOpenSIPSSipMethod); ok {
		if n, err := radius.Integer(v); err == nil {
			r.sipMethod = n
		}
	}
	if v, ok := p.Attributes.Lookup(attrMediaInfo); ok {
		r.mediaTimeout = radius.String(v) == "timeout"
	}
	r.sessionTime = DurationUnknown
	if v, err := rfc2866.AcctSessionTime_Lookup(p); err == nil {
		r.sessionTime = int(uint32(v))
	} else if v, ok := p.Attributes.Lookup(attrSipCallDuration); ok {
		if n, err := radius.Integer(v); err == nil {
			r.sessionTime = int(n)
		}
	}
	return r
}

// lookupEither returns the first attribute of type a, else of type b: one
// SIP attribute under its dictionary.openser and dictionary.opensips
// numbers.
func lookupEither(p *radius.Packet, a, b radius.Type) (radius.Attribute, bool) {
	if v, ok := p.Attributes.Lookup(a); ok {
		return v, true
	}
	return p.Attributes.Lookup(b)
}

// Listener receives RADIUS accounting live and closes tracked calls on
// Stop, and on MediaProxy's Interim-Update saying the media timed out.
type Listener struct {
	tracker Tracker
	log     *slog.Logger
	conn    net.PacketConn
	secret  string
	srv     *radius.PacketServer

	closeOnce sync.Once
}

// NewListener binds addr (UDP, e.g. ":1813") so that Serve cannot fail on
// the address later; secret is the shared secret of the sending proxy.
func NewListener(addr, secret string, tracker Tracker, log *slog.Logger) (*Listener, error) {
	if secret == "" {
		return nil, errors.New("acct: radius listener: empty secret")
	}
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("acct: radius listener: %w", err)
	}
	l := &Listener{tracker: tracker, log: log, conn: conn, secret: secret}
	l.srv = &radius.PacketServer{
		// The server checks each request's authenticator against this
		// secret and drops what does not verify; verifyingConn does the
		// same check first so the log line can name the sender.
		SecretSource: radius.StaticSecretSource([]byte(secret)),
		Handler:      radius.HandlerFunc(l.serveRADIUS),
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return l, nil
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.conn.LocalAddr() }

// Serve handles requests until ctx is done or Close is called.
func (l *Listener) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	err := l.srv.Serve(&verifyingConn{PacketConn: l.conn, secret: []byte(l.secret), log: l.log})
	if errors.Is(err, radius.ErrServerShutdown) {
		return nil
	}
	// Said here: the daemon runs Serve in the background.
	l.log.Error("radius accounting listener stopped: calls that end unseen are no longer noticed through it",
		"listen", l.conn.LocalAddr().String(), "err", err)
	return err
}

// Close stops the listener and waits for handlers in flight.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.srv.Shutdown(ctx)
		l.conn.Close() // Shutdown only closes it if Serve ran
	})
	return nil
}

func (l *Listener) serveRADIUS(w radius.ResponseWriter, r *radius.Request) {
	if r.Code == radius.CodeStatusServer {
		// verifyingConn let it through: its Message-Authenticator
		// verified.
		l.answerStatusServer(w, r)
		return
	}
	// Only accounting: IsAuthenticRequest lets Access-Request through
	// unverified, and we have nothing to say to it.
	if r.Code != radius.CodeAccountingRequest {
		l.log.Warn("radius: not an Accounting-Request, dropped", "code", r.Code.String(), "from", r.RemoteAddr.String())
		return
	}
	rec := extractRecord(r.Packet)
	// Answer first: the record is safely ours, and a late answer makes the
	// sender retransmit.
	if err := w.Write(r.Response(radius.CodeAccountingResponse)); err != nil {
		l.log.Warn("radius: cannot answer", "from", r.RemoteAddr.String(), "err", err)
	}
	if rec.callID == "" {
		return
	}
	var o Outcome
	switch {
	case rec.status == rfc2866.AcctStatusType_Value_Stop && rec.sipMethod == sipMethodCancel:
		// The acc modules report a CANCEL as a Stop. It ends no call
		// that was answered (it may have crossed the 200 OK), and the
		// proxy itself reports a call it cancelled before the answer.
		l.log.Debug("radius: stop for a CANCEL, ignored", "callid", rec.callID, "from_tag", rec.fromTag)
		return
	case rec.status == rfc2866.AcctStatusType_Value_Stop:
		o = Outcome{CallID: rec.callID, Kind: Terminated, Duration: rec.sessionTime}
	case rec.status == rfc2866.AcctStatusType_Value_InterimUpdate && rec.mediaTimeout:
		// MediaProxy saw the media stop: nobody sent a BYE. The
		// session layer ends the dialog and debits until now.
		o = Outcome{CallID: rec.callID, Kind: TimedOut}
	default:
		return
	}
	// End looks the call up itself: no scan of every tracked call per
	// packet. Without Sip-From-Tag, any From tag matches.
	if rec.hasFromTag {
		o.FromTag = rec.fromTag
	}
	ended := l.tracker.End(o)
	if !ended && rec.hasFromTag && rec.toTag != "" {
		// The callee's BYE: its From is the callee, so the call's From
		// tag is the Stop's To tag (OpenSIPS swaps them only with
		// detect_direction).
		o.FromTag = rec.toTag
		ended = l.tracker.End(o)
	}
	if !ended {
		what := "stop"
		if o.Kind == TimedOut {
			what = "media timeout"
		}
		l.log.Debug("radius: "+what+" for an untracked call, ignored", "callid", rec.callID, "from_tag", rec.fromTag, "to_tag", rec.toTag)
		return
	}
	var duration any = o.Duration
	switch {
	case o.Kind == TimedOut:
		duration = "until now"
	case o.Duration == DurationUnknown:
		duration = "unknown" // the session layer debits what it measured
	}
	l.log.Info("radius accounting says call ended", "callid", rec.callID, "from_tag", o.FromTag,
		"reason", o.Kind.String(), "duration", duration)
}

// verifyingConn drops, with a log line naming the sender, every datagram
// that is not an Accounting-Request signed with the shared secret. Warnings
// are limited to one a second so a misconfigured or hostile sender cannot
// flood syslog. ReadFrom is only called from the server's single read loop.
type verifyingConn struct {
	net.PacketConn
	secret     []byte
	log        *slog.Logger
	lastWarn   time.Time
	suppressed int
}

func (c *verifyingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, addr, err
		}
		if length, ok := signedLength(b[:n], c.secret); ok {
			return length, addr, nil
		}
		if n >= 1 && radius.Code(b[0]) == radius.CodeStatusServer {
			// A health check with the wrong secret or none: nothing
			// is lost, and it comes every few seconds (RFC 5997
			// section 3: silently discarded).
			c.log.Debug("radius: dropped a Status-Server not signed with our secret (no or a wrong Message-Authenticator)",
				"from", addr.String(), "len", n)
			continue
		}
		if now := time.Now(); now.Sub(c.lastWarn) >= time.Second {
			c.log.Warn("radius: dropped a datagram that is not an Accounting-Request signed with our secret",
				"from", addr.String(), "len", n, "also_dropped_since_last_warning", c.suppressed)
			c.lastWarn, c.suppressed = now, 0
		} else {
			c.suppressed++
		}
	}
}

// signedLength reports whether b is an Accounting-Request signed with
// secret, and its length: octets past the Length field are padding, not
// signed by the sender and ignored (RFC 2865 section 3); a Length past
// the datagram's end, or under the header's 20 octets, is malformed.
//
// A Status-Server (RFC 5997) is signed by its Message-Authenticator
// instead: its Request Authenticator is random, and the library lets it
// through unverified.
func signedLength(b, secret []byte) (int, bool) {
	if len(b) < 20 {
		return 0, false
	}
	code := radius.Code(b[0])
	if code != radius.CodeAccountingRequest && code != radius.CodeStatusServer {
		return 0, false
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < 20 || length > len(b) {
		return 0, false
	}
	if code == radius.CodeStatusServer {
		return length, validMessageAuthenticator(b[:length], secret)
	}
	return length, radius.IsAuthenticRequest(b[:length], secret)
}
