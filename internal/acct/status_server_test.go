package acct

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/acct/accttest"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// statusServer builds a Status-Server (RFC 5997) as a health check sends
// it: a random Request Authenticator and a Message-Authenticator, signed
// with secret (RFC 3579 section 3.2), unless sign is false.
func statusServer(t testing.TB, secret string, sign bool) *radius.Packet {
	t.Helper()
	p := radius.New(radius.CodeStatusServer, []byte(secret))
	rfc2865.NASIdentifier_SetString(p, "health-check")
	if sign {
		signStatus(t, p)
	}
	return p
}

// signStatus sets p's Message-Authenticator for its present content.
func signStatus(t testing.TB, p *radius.Packet) {
	t.Helper()
	rfc2869.MessageAuthenticator_Set(p, make([]byte, 16))
	b, err := p.MarshalBinary() // the authenticator as is: random
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(md5.New, p.Secret)
	mac.Write(b)
	rfc2869.MessageAuthenticator_Set(p, mac.Sum(nil))
}

// verifyStatusAnswer checks an answer to req as RFC 5997 section 3 wants
// it on the accounting port: an Accounting-Response whose Response
// Authenticator (RFC 2866, over the request's authenticator) and
// Message-Authenticator (RFC 3579, over the request's authenticator) are
// both made with the secret. Computed here from the RFCs, not with the
// listener's own helpers.
func verifyStatusAnswer(t *testing.T, answer []byte, req *radius.Packet) {
	t.Helper()
	if len(answer) < 20 || radius.Code(answer[0]) != radius.CodeAccountingResponse {
		t.Fatalf("answer % x, want an Accounting-Response", answer)
	}
	if answer[1] != req.Identifier {
		t.Fatalf("answer identifier %d, want %d", answer[1], req.Identifier)
	}
	reqb, err := req.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !radius.IsAuthenticResponse(answer, reqb, req.Secret) {
		t.Fatal("the answer's Response Authenticator is not made with the secret")
	}
	p, err := radius.Parse(answer, req.Secret)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rfc2869.MessageAuthenticator_Lookup(p)
	if err != nil || len(got) != 16 {
		t.Fatalf("answer without a Message-Authenticator: %v", err)
	}
	signed := append([]byte(nil), answer...)
	copy(signed[4:20], req.Authenticator[:])
	zeroed := false
	for i := 20; i+2 <= len(signed); i += int(signed[i+1]) {
		if signed[i] == byte(rfc2869.MessageAuthenticator_Type) {
			clear(signed[i+2 : i+18])
			zeroed = true
		}
		if signed[i+1] < 2 {
			t.Fatal("malformed attribute in the answer")
		}
	}
	if !zeroed {
		t.Fatal("Message-Authenticator not found in the raw answer")
	}
	mac := hmac.New(md5.New, req.Secret)
	mac.Write(signed)
	if !hmac.Equal(mac.Sum(nil), got) {
		t.Fatal("the answer's Message-Authenticator is not made with the secret")
	}
}

// A proxy's or radclient's health check sends Status-Server to the
// accounting port: answered with a signed Accounting-Response when signed
// with our secret; dropped unanswered (logged at debug) when not signed,
// or signed with another secret. Nothing is ended either way.
func TestListenerAnswersStatusServer(t *testing.T) {
	tr := trackedForListener()
	logs := &lineLog{}
	l := startListenerLogged(t, tr, logs.logger())
	addr := l.Addr().String()

	tests := []struct {
		name     string
		p        *radius.Packet
		answered bool
	}{
		{"signed with our secret", statusServer(t, secret, true), true},
		{"signed with another secret", statusServer(t, "wrong", true), false},
		{"no Message-Authenticator", statusServer(t, secret, false), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.answered {
				droppedLogged(t, addr, logs, tt.p, "radius: dropped a Status-Server", "level=DEBUG")
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := radius.Client{Retry: 300 * time.Millisecond}
			resp, err := c.Exchange(ctx, tt.p, addr)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			b, err := resp.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			verifyStatusAnswer(t, b, tt.p)
		})
	}
	if got := tr.Closed(); len(got) != 0 {
		t.Errorf("a Status-Server ended calls: %+v", got)
	}
	if strings.Contains(logs.String(), "not an Accounting-Request") {
		t.Errorf("a Status-Server was called a stray packet:\n%s", logs)
	}
}

// radclient's "status" command is what an operator's health check runs;
// it checks the answer's authenticators itself and exits 0 only when it
// got a valid one. radclient (3.2) signs a Status-Server only when told to
// with "Message-Authenticator = 0x00" (FreeRADIUS's own servers also drop
// one without it, as RFC 5997 section 3 says).
func TestListenerStatusServerRadclient(t *testing.T) {
	if _, err := exec.LookPath("radclient"); err != nil {
		accttest.Require(t, errors.New("package internal/acct: radclient not found: install the Debian package freeradius-utils"))
	}
	l := startListener(t, newTracker())
	for _, tt := range []struct {
		name, secret, attrs string
		answered            bool
	}{
		{"our secret", secret, `Message-Authenticator = 0x00, NAS-Identifier = "health-check"`, true},
		{"another secret", "nope", `Message-Authenticator = 0x00, NAS-Identifier = "health-check"`, false},
		{"not signed", secret, `NAS-Identifier = "health-check"`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "radclient", "-D", "/usr/share/freeradius",
				"-r", "2", "-t", "1", "-x", l.Addr().String(), "status", tt.secret)
			cmd.Stdin = strings.NewReader(tt.attrs + "\n")
			out, err := cmd.CombinedOutput()
			if tt.answered && (err != nil || !strings.Contains(string(out), "Accounting-Response")) {
				t.Fatalf("radclient status: %v\n%s", err, out)
			}
			if !tt.answered && err == nil {
				t.Fatalf("radclient status got an answer with a wrong secret:\n%s", out)
			}
		})
	}
}

// droppedLogged is dropped for a datagram whose drop is logged as
// dropLine, at level (e.g. "level=DEBUG").
func droppedLogged(t *testing.T, addr string, logs *lineLog, p *radius.Packet, dropLine, level string) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(p *radius.Packet) {
		if _, err := conn.Write(mustEncode(t, p)); err != nil {
			t.Fatal(err)
		}
	}
	before := logs.count(dropLine)
	send(p)
	for deadline := time.Now().Add(20 * time.Second); logs.count(dropLine) == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q logged:\n%s", dropLine, logs)
		}
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, dropLine) && !strings.Contains(line, level) {
			t.Fatalf("drop logged at another level than %s: %s", level, line)
		}
	}
	// As in dropped: the listener reads in order, so the probe's answer
	// comes first only if p was not answered.
	probe := statusServer(t, secret, true)
	probe.Identifier = p.Identifier + 1
	signStatus(t, probe)
	send(probe)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("the probe was not answered: %v", err)
	}
	if buf[1] != probe.Identifier {
		t.Fatalf("answered the dropped request (identifier %d)", buf[1])
	}
	verifyStatusAnswer(t, buf[:n], probe)
}
