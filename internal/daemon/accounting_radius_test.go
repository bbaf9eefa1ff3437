package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2866"

	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/logfmt"
	"github.com/callcontrol/callcontrol/internal/rating/ratingtest"
)

// TestRadiusStopDebitsOnce: a call that RADIUS accounting ended is
// debited once, whatever else reports its end: the sender retransmitting
// the Stop (its answer was lost), the BYE's Stop and the dialog's CDR
// both arriving, or the proxy's own stop coming after.
func TestRadiusStopDebitsOnce(t *testing.T) {
	const secret = "s3cret"
	tests := []struct {
		name       string
		stops      int  // Stops sent, the same packet each time after the first was handled
		cdrToo     bool // then a second, different Stop: the dialog's CDR
		proxyStop  bool // then the proxy's stop
		wantDebits []int
	}{
		{"one stop", 1, false, false, []int{5}},
		{"stop retransmitted", 3, false, false, []int{5}},
		{"bye stop and cdr", 1, true, false, []int{5}},
		{"stop then proxy stop", 1, false, true, []int{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, eng, radiusAddr, logs := startRadiusDaemon(t, secret)
			stop := radius.New(radius.CodeAccountingRequest, []byte(secret))
			rfc2866.AcctStatusType_Add(stop, rfc2866.AcctStatusType_Value_Stop)
			rfc2866.AcctSessionID_AddString(stop, "c")
			rfc2866.AcctSessionTime_Add(stop, 5)
			stop.Add(105, radius.Attribute("caller"))
			exchange := func(p *radius.Packet) {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				c := radius.Client{Retry: 500 * time.Millisecond}
				if _, err := c.Exchange(ctx, p, radiusAddr); err != nil {
					t.Fatalf("not answered: %v", err)
				}
			}
			// The listener answers before it ends the call: wait for
			// what each Stop did, in the log.
			waitLines := func(n int, words ...string) {
				t.Helper()
				for deadline := time.Now().Add(20 * time.Second); len(logs.lines("DEBUG", words...))+len(logs.lines("INFO", words...)) < n; time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("want %d lines with %q:\n%s", n, words, logs.b.String())
					}
				}
			}
			exchange(stop)
			waitLines(1, "radius accounting says call ended", "callid=c")
			for i := 1; i < tt.stops; i++ {
				exchange(stop)
				waitLines(i, "radius: stop for an untracked call, ignored", "callid=c")
			}
			untracked := tt.stops - 1
			if tt.cdrToo {
				cdr := radius.New(radius.CodeAccountingRequest, []byte(secret))
				rfc2866.AcctStatusType_Add(cdr, rfc2866.AcctStatusType_Value_Stop)
				rfc2866.AcctSessionID_AddString(cdr, "c")
				cdr.Add(105, radius.Attribute("caller"))
				cdr.Add(227, radius.NewInteger(6))
				exchange(cdr)
				untracked++
				waitLines(untracked, "radius: stop for an untracked call, ignored", "callid=c")
			}
			if tt.proxyStop {
				if got := e.call("stop\ncallid: c"); got != "Not found" { // accounting ended it
					t.Fatalf("proxy stop: %q", got)
				}
			}
			e.waitNoDebitOwed()
			if got := eng.Debited("c"); fmt.Sprint(got) != fmt.Sprint(tt.wantDebits) {
				t.Fatalf("debited %v, want %v", got, tt.wantDebits)
			}
			if n := len(logs.lines("INFO", "radius accounting says call ended")); n != 1 {
				t.Errorf("%d 'call ended' lines, want 1:\n%s", n, logs.b.String())
			}
		})
	}
}

// TestReloadOfRadiusOptionsWaitsForRestart: [RadiusAccounting] and
// [RadiusDatabase] apply at a restart. A reload that changes them says
// so, every time, and the listener in force goes on as it was: still
// answering requests signed with the old secret at the old address.
func TestReloadOfRadiusOptionsWaitsForRestart(t *testing.T) {
	radiusAddr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	otherAddr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	tests := []struct {
		name, sections string
	}{
		{"new secret", "[RadiusAccounting]\nlisten = " + radiusAddr + "\nsecret = new\n"},
		{"new address", "[RadiusAccounting]\nlisten = " + otherAddr + "\nsecret = old\n"},
		{"listener off", ""},
		{"database on", "[RadiusAccounting]\nlisten = " + radiusAddr + "\nsecret = old\n[RadiusDatabase]\nhost = 127.0.0.1:1\nuser = u\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "", "[RadiusAccounting]\nlisten = "+radiusAddr+"\nsecret = old\n")
			e.writeConfig("", tt.sections)
			for i := 1; i <= 2; i++ {
				restart, err := e.ctl().Reload()
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(strings.Join(restart, " "), "[RadiusAccounting]") {
					t.Fatalf("reload %d: restart needed %q, want the radius options named", i, restart)
				}
			}
			// Signed with the old secret: a listener that took the new
			// secret, or moved, would drop it unanswered.
			p := radius.New(radius.CodeAccountingRequest, []byte("old"))
			rfc2866.AcctStatusType_Add(p, rfc2866.AcctStatusType_Value_InterimUpdate)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := (&radius.Client{Retry: 300 * time.Millisecond}).Exchange(ctx, p, radiusAddr); err != nil {
				t.Errorf("the listener in force did not answer a request signed with its secret: %v", err)
			}
		})
	}
}

// startRadiusDaemon starts a daemon with a rating engine and a RADIUS
// listener on secret, logging at debug level, with one answered call "c"
// of alice (From tag "caller").
func startRadiusDaemon(t *testing.T, secret string) (*env, *ratingtest.Engine, string, *logBuffer) {
	t.Helper()
	eng := ratingtest.New(t)
	eng.SetAccount("alice@example.com", ratingtest.Account{Balance: 100})
	eng.SetRate("0031", ratingtest.PerMinute(0.10))
	radiusAddr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	logs := &logBuffer{}
	dir := dialogtest.SocketDir(t)
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "run", "socket"), control: filepath.Join(dir, "run", "control")}
	e.kam = dialogtest.NewKamailio(t, filepath.Join(dir, "kam.sock"))
	e.writeConfig("limit = 600", fmt.Sprintf("[CDRTool]\naddress = %s\n[RadiusAccounting]\nlisten = %s\nsecret = %s\n",
		eng.Addr(), radiusAddr, secret))
	e.opts = Options{ConfigDir: dir, RuntimeDir: filepath.Join(dir, "run"), host: noDomainHost}
	d, err := Start(e.opts, slog.New(logfmt.New(logs, logfmt.Options{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	e.d = d
	t.Cleanup(func() { e.d.Stop() })
	if got := e.call(strings.Replace(initReq("c", "alice"), "fromtag: ft", "fromtag: caller", 1)); got != "Limited" {
		t.Fatalf("init: %q", got)
	}
	if got := e.call("start\ncallid: c\ndialogid: 3:4"); got != "Ok" {
		t.Fatalf("start: %q", got)
	}
	return e, eng, radiusAddr, logs
}

// TestRadiusMediaTimeoutEndsDialog: MediaProxy's Interim-Update saying
// the media timed out ends the call through the daemon: its dialog is
// ended at the proxy (nobody sent a BYE) and it is debited.
func TestRadiusMediaTimeoutEndsDialog(t *testing.T) {
	const secret = "s3cret"
	e, eng, radiusAddr, _ := startRadiusDaemon(t, secret)
	p := radius.New(radius.CodeAccountingRequest, []byte(secret))
	rfc2866.AcctStatusType_Add(p, rfc2866.AcctStatusType_Value_InterimUpdate)
	rfc2866.AcctSessionID_AddString(p, "c")
	p.Add(206, radius.Attribute("caller"))  // dictionary.opensips's Sip-From-Tag
	p.Add(234, radius.Attribute("timeout")) // MediaProxy's Media-Info
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := (&radius.Client{Retry: 500 * time.Millisecond}).Exchange(ctx, p, radiusAddr); err != nil {
		t.Fatalf("not answered: %v", err)
	}
	e.kam.WaitFor(1, 20*time.Second)
	e.waitNoDebitOwed()
	if d := eng.Debited("c"); len(d) != 1 {
		t.Fatalf("debited %v, want once", d)
	}
	if got := e.call("stop\ncallid: c"); got != "Not found" {
		t.Fatalf("the call is still tracked: stop answered %q", got)
	}
}
