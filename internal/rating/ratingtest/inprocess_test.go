package ratingtest

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// Handle and a TCP client see one engine: one balance and one set of
// sessions per account, whoever asks.
func TestHandleSharesStateWithTCPClients(t *testing.T) {
	e := New(t)
	c := &clock{t: time.Unix(1700000000, 0)}
	e.SetClock(c.now)
	e.SetAccount("alice@example.com", Account{Balance: 1})
	e.SetRate("0031", PerMinute(0.10)) // 600 s
	if got := e.Handle("MaxSessionTime CallId=c1 " + alice + " " + nl + " Duration=36000"); got != "600\ntype=prepaid" {
		t.Fatalf("in-process: %q", got)
	}
	c.advance(100 * time.Second)
	conn, err := net.Dial("tcp", e.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("MaxSessionTime CallId=c2 " + alice + " " + nl + " Duration=36000\n"))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil || line != "250\n" { // (600 - 100) s left for two calls
		t.Fatalf("over TCP: %q %v", line, err)
	}
	if got := e.Handle("DebitBalance CallId=c1 " + alice + " " + nl + " Duration=100"); got[:len("Ok\nMaxSessionTime=")] != "Ok\nMaxSessionTime=" {
		t.Fatalf("debit: %q", got)
	}
	if b := e.Balance("alice@example.com"); b < 0.8333 || b > 0.8334 {
		t.Fatalf("balance %.4f after 100 s at 0.10/min", b)
	}
	if n := e.Count("maxsessiontime"); n != 2 {
		t.Fatalf("Count = %d", n)
	}
	if s := e.Sessions("alice@example.com"); len(s) != 1 || s[0] != "c2" {
		t.Fatalf("sessions %v", s)
	}
}
