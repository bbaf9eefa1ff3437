package acct

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/acct/accttest"
	"layeh.com/radius"
	"layeh.com/radius/rfc2866"
)

const secret = "s3cret"

// acctPacket builds an Accounting-Request; empty fields are left out.
func acctPacket(secret string, status rfc2866.AcctStatusType, callID, fromTag string, sessionTime int) *radius.Packet {
	p := radius.New(radius.CodeAccountingRequest, []byte(secret))
	if status != 0 {
		rfc2866.AcctStatusType_Add(p, status)
	}
	if callID != "" {
		rfc2866.AcctSessionID_AddString(p, callID)
	}
	if fromTag != "" {
		p.Add(attrSipFromTag, radius.Attribute(fromTag))
		p.Add(attrSipToTag, radius.Attribute("to-"+fromTag))
	}
	if sessionTime >= 0 {
		rfc2866.AcctSessionTime_Add(p, rfc2866.AcctSessionTime(sessionTime))
	}
	return p
}

func TestExtractRecord(t *testing.T) {
	tests := []struct {
		name string
		p    *radius.Packet
		want acctRecord
	}{
		{"stop", acctPacket(secret, rfc2866.AcctStatusType_Value_Stop, "c1", "f1", 42),
			acctRecord{status: 2, callID: "c1", fromTag: "f1", hasFromTag: true, toTag: "to-f1", sessionTime: 42}},
		{"no from tag", acctPacket(secret, rfc2866.AcctStatusType_Value_Stop, "c1", "", 5),
			acctRecord{status: 2, callID: "c1", sessionTime: 5}},
		{"no time", acctPacket(secret, rfc2866.AcctStatusType_Value_Stop, "c1", "f", -1),
			acctRecord{status: 2, callID: "c1", fromTag: "f", hasFromTag: true, toTag: "to-f", sessionTime: DurationUnknown}},
		{"start", acctPacket(secret, rfc2866.AcctStatusType_Value_Start, "c1", "f", -1),
			acctRecord{status: 1, callID: "c1", fromTag: "f", hasFromTag: true, toTag: "to-f", sessionTime: DurationUnknown}},
		{"empty", acctPacket(secret, 0, "", "", -1), acctRecord{sessionTime: DurationUnknown}},
	}
	// OpenSIPS's acc module sends a CDR's duration as Sip-Call-Duration
	// (227), never Acct-Session-Time (modules/acc/acc.c, 3.6.8).
	cdr := acctPacket(secret, rfc2866.AcctStatusType_Value_Stop, "c1", "f1", -1)
	cdr.Add(attrSipCallDuration, radius.NewInteger(65))
	tests = append(tests, struct {
		name string
		p    *radius.Packet
		want acctRecord
	}{"opensips cdr", cdr, acctRecord{status: 2, callID: "c1", fromTag: "f1", hasFromTag: true, toTag: "to-f1", sessionTime: 65}})
	// A malformed (short) Acct-Status-Type is not a Stop.
	bad := acctPacket(secret, 0, "c1", "", -1)
	bad.Add(rfc2866.AcctStatusType_Type, radius.Attribute{0, 2})
	tests = append(tests, struct {
		name string
		p    *radius.Packet
		want acctRecord
	}{"short status", bad, acctRecord{callID: "c1", sessionTime: DurationUnknown}})

	for _, tt := range tests {
		if got := extractRecord(tt.p); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func FuzzExtractRecord(f *testing.F) {
	for _, p := range []*radius.Packet{
		acctPacket(secret, rfc2866.AcctStatusType_Value_Stop, "c1", "f1", 42),
		acctPacket(secret, rfc2866.AcctStatusType_Value_InterimUpdate, "c1", "", -1),
		acctPacket(secret, 0, "", "", -1),
	} {
		b, err := p.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := radius.Parse(b, []byte(secret))
		if err != nil {
			return
		}
		r := extractRecord(p)
		if r.sessionTime < 0 && r.sessionTime != DurationUnknown {
			t.Errorf("negative session time %d", r.sessionTime)
		}
		if !r.hasFromTag && r.fromTag != "" {
			t.Errorf("from tag %q without hasFromTag", r.fromTag)
		}
	})
}

func startListener(t *testing.T, tr Tracker) *Listener {
	t.Helper()
	return startListenerLogged(t, tr, testLogger(t))
}

func startListenerLogged(t *testing.T, tr Tracker, log *slog.Logger) *Listener {
	t.Helper()
	l, err := NewListener("127.0.0.1:0", secret, tr, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return after cancel")
		}
		l.Close()
	})
	return l
}

func trackedForListener() *fakeTracker {
	return newTracker(
		Call{CallID: "stop-tagged", FromTag: "f1"},
		Call{CallID: "stop-untagged", FromTag: "f2"},
		Call{CallID: "wrong-tag", FromTag: "mine"},
		Call{CallID: "start", FromTag: "f"},
		Call{CallID: "interim", FromTag: "f"},
		Call{CallID: "bad-secret", FromTag: "f"},
	)
}

func TestListenerLibraryClient(t *testing.T) {
	tr := trackedForListener()
	logs := &lineLog{}
	l := startListenerLogged(t, tr, logs.logger())
	addr := l.Addr().String()

	tests := []struct {
		name     string
		p        *radius.Packet
		answered bool
	}{
		{"stop with from tag", acctPacket(secret, rfc2866.AcctStatusType_Value_Stop, "stop-tagged", "f1", 42), true},
		{"stop without from tag", acctPacket(secret, rfc2866.AcctStatusType_Value_Stop, "stop-untagged", "", 7), true},
		{"stop, other dialog", acctPacket(secret, rfc2866.AcctStatusType_Value_Stop, "wrong-tag", "theirs", 9), true},
		{"start", acctPacket(secret, rfc2866.AcctStatusType_Value_Start, "start", "f", -1), true},
		{"interim", acctPacket(secret, rfc2866.AcctStatusType_Value_InterimUpdate, "interim", "f", 30), true},
		{"unknown session", acctPacket(secret, rfc2866.AcctStatusType_Value_Stop, "nobody", "f", 1), true},
		{"wrong secret", acctPacket("wrong", rfc2866.AcctStatusType_Value_Stop, "bad-secret", "f", 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.answered {
				dropped(t, addr, logs, tt.p)
				return
			}
			// The client checks the response authenticator with the
			// packet's secret, so a reply proves the secret matched.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := radius.Client{Retry: 300 * time.Millisecond}
			resp, err := c.Exchange(ctx, tt.p, addr)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if resp.Code != radius.CodeAccountingResponse {
				t.Fatalf("answer %v, want Accounting-Response", resp.Code)
			}
		})
	}
	want := []Outcome{
		{CallID: "stop-tagged", FromTag: "f1", Kind: Terminated, Duration: 42},
		{CallID: "stop-untagged", FromTag: "f2", Kind: Terminated, Duration: 7},
	}
	// End runs after the answer: wait for it.
	got := tr.waitClosed(t, len(want))
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("closed:\n got %+v\nwant %+v", got, want)
	}
	if left := tr.TrackedCalls(); len(left) != 4 {
		t.Errorf("left tracked: %+v", left)
	}
}

func TestListenerDropsAccessRequest(t *testing.T) {
	tr := newTracker(Call{CallID: "c", FromTag: "f"})
	logs := &lineLog{}
	l := startListenerLogged(t, tr, logs.logger())
	p := radius.New(radius.CodeAccessRequest, []byte(secret))
	rfc2866.AcctStatusType_Add(p, rfc2866.AcctStatusType_Value_Stop)
	rfc2866.AcctSessionID_AddString(p, "c")
	dropped(t, l.Addr().String(), logs, p)
	if got := tr.Closed(); len(got) != 0 {
		t.Errorf("closed %+v", got)
	}
}

// dropped sends p and shows that the listener dropped it unanswered,
// without waiting for silence: the listener's read loop logs the drop
// (nothing answers a datagram it dropped), and then a request that must
// be answered goes from the same socket: the listener reads datagrams in
// order, so no answer to p may come before the probe's.
func dropped(t *testing.T, addr string, logs *lineLog, p *radius.Packet) {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(p *radius.Packet) {
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	const dropLine = "radius: dropped a datagram"
	before := logs.count(dropLine)
	send(p)
	for deadline := time.Now().Add(20 * time.Second); logs.count(dropLine) == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no drop logged:\n%s", logs)
		}
	}
	probe := acctPacket(secret, rfc2866.AcctStatusType_Value_InterimUpdate, "probe", "", -1)
	probe.Identifier = p.Identifier + 1
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
	if !radius.IsAuthenticResponse(buf[:n], mustEncode(t, probe), []byte(secret)) {
		t.Fatalf("the probe's answer is not signed with the secret")
	}
}

func mustEncode(t *testing.T, p *radius.Packet) []byte {
	t.Helper()
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lineLog keeps a logger's output for a test to wait on.
type lineLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lineLog) count(s string) int { return strings.Count(l.String(), s) }

func (l *lineLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestListenerCloseWithoutServe(t *testing.T) {
	l, err := NewListener("127.0.0.1:0", secret, newTracker(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := l.Serve(context.Background()); err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
	if _, err := NewListener("127.0.0.1:0", "", newTracker(), testLogger(t)); err == nil {
		t.Error("empty secret accepted")
	}
}

// radclientDict names the openser attributes for radclient. Debian's
// dictionary.openser itself cannot be included beside the default
// dictionary (Sip-Method clashes with dictionary.columbia_university), so
// the two we send are declared with dictionary.openser's numbers.
const radclientDict = `$INCLUDE /usr/share/freeradius/dictionary
ATTRIBUTE	Sip-To-Tag	104	string
ATTRIBUTE	Sip-From-Tag	105	string
`

func TestListenerRadclient(t *testing.T) {
	if _, err := exec.LookPath("radclient"); err != nil {
		accttest.Require(t, errors.New("package internal/acct: radclient not found: install the Debian package freeradius-utils"))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dictionary"), []byte(radclientDict), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := trackedForListener()
	l := startListener(t, tr)

	tests := []struct {
		name, secret, attrs string
		answered            bool
	}{
		{"stop", secret, `Acct-Status-Type = Stop, Acct-Session-Id = "stop-tagged", Sip-From-Tag = "f1", Sip-To-Tag = "t", Acct-Session-Time = 61`, true},
		{"interim", secret, `Acct-Status-Type = Interim-Update, Acct-Session-Id = "interim", Sip-From-Tag = "f", Acct-Session-Time = 10`, true},
		{"start", secret, `Acct-Status-Type = Start, Acct-Session-Id = "start", Sip-From-Tag = "f"`, true},
		{"other dialog", secret, `Acct-Status-Type = Stop, Acct-Session-Id = "wrong-tag", Sip-From-Tag = "theirs", Acct-Session-Time = 1`, true},
		{"wrong secret", "nope", `Acct-Status-Type = Stop, Acct-Session-Id = "bad-secret", Sip-From-Tag = "f", Acct-Session-Time = 1`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// radclient exits 0 only when it got a valid reply.
			cmd := exec.CommandContext(ctx, "radclient", "-D", "/usr/share/freeradius", "-d", dir,
				"-r", "2", "-t", "1", "-x", l.Addr().String(), "acct", tt.secret)
			cmd.Stdin = strings.NewReader(tt.attrs + "\n")
			out, err := cmd.CombinedOutput()
			if tt.answered && (err != nil || !strings.Contains(string(out), "Accounting-Response")) {
				t.Fatalf("radclient: %v\n%s", err, out)
			}
			if !tt.answered && err == nil {
				t.Fatalf("radclient got an answer with a wrong secret:\n%s", out)
			}
		})
	}
	got := tr.waitClosed(t, 1)
	want := Outcome{CallID: "stop-tagged", FromTag: "f1", Kind: Terminated, Duration: 61}
	if len(got) != 1 || got[0] != want {
		t.Errorf("closed %+v, want %+v", got, want)
	}
}

type nopWriter struct{}

func (nopWriter) Write(*radius.Packet) error { return nil }

// The callee's BYE: OpenSIPS takes Sip-From-Tag from the BYE's own From
// header (swapped only with detect_direction, off by default), so the
// Stop's From tag is the callee's and its To tag the caller's, the call's
// From tag. The call is ended all the same.
func TestCalleeByeStopMatched(t *testing.T) {
	tr := newTracker(Call{CallID: "c", FromTag: "caller"})
	l, err := NewListener("127.0.0.1:0", secret, tr, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := radius.New(radius.CodeAccountingRequest, []byte(secret))
	rfc2866.AcctStatusType_Add(p, rfc2866.AcctStatusType_Value_Stop)
	rfc2866.AcctSessionID_AddString(p, "c")
	p.Add(attrSipFromTag, radius.Attribute("callee"))
	p.Add(attrSipToTag, radius.Attribute("caller"))
	l.serveRADIUS(nopWriter{}, &radius.Request{Packet: p, RemoteAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}})
	if got := tr.Closed(); len(got) != 1 || got[0].FromTag != "caller" || got[0].Duration != DurationUnknown {
		t.Errorf("callee's BYE Stop: closed %+v, want the call, duration unknown", got)
	}
}
