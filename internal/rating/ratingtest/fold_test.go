package ratingtest

import (
	"testing"
	"time"
)

// The engine lower-cases From whole, user part included: two spellings of
// one address are one account, sharing its balance and its sessions. Only
// ASCII letters fold (PHP's strtolower).
func TestFromFoldedAsTheEngineFolds(t *testing.T) {
	e := New(t)
	now := time.Unix(1700000000, 0)
	e.SetClock(func() time.Time { return now })
	e.SetAccount("sip:frank@example.com", Account{Balance: 1})
	e.SetAccount("sip:jürgen@example.com", Account{Balance: 1})
	e.SetRate("", PerMinute(0.10)) // 600 s for 1.00
	ask := func(callID, from string) string {
		reply, _ := e.request("MaxSessionTime CallId="+callID+" From="+from+" To=sip:0031@example.com Gateway=10.0.0.1 Duration=36000 Application=audio", make(chan struct{}))
		return reply
	}
	if got := ask("c1", "sip:Frank@Example.com"); got != "600\ntype=prepaid\n\n" {
		t.Fatalf("first call: %q", got)
	}
	// The second spelling is the same account: one balance for two calls.
	if got := ask("c2", "sip:frank@example.com"); got != "300\ntype=prepaid\n\n" {
		t.Fatalf("second spelling: %q, want the account's common limit for two calls", got)
	}
	if got := e.Sessions("FRANK@EXAMPLE.COM"); len(got) != 2 {
		t.Fatalf("sessions of the account: %v", got)
	}
	// Non-ASCII letters are not folded: JÜRGEN is not jürgen, but JüRGEN is.
	if got := ask("c3", "sip:JÜRGEN@example.com"); got != "none\ntype=postpaid\n\n" {
		t.Fatalf("non-ASCII upper case folded: %q", got)
	}
	if got := ask("c4", "sip:JüRGEN@example.com"); got != "600\ntype=prepaid\n\n" {
		t.Fatalf("ASCII upper case in a non-ASCII name not folded: %q", got)
	}
}
