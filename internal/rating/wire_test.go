package rating

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		name string
		got  func() (string, error)
		want string
	}{
		{"init", func() (string, error) {
			return formatMaxSessionTime(Request{CallID: "6432622xvv@1", From: "sip:alice@example.com", To: "sip:0031650222333@example.com", Gateway: "10.0.0.1", Duration: 36000})
		}, "MaxSessionTime CallId=6432622xvv@1 From=sip:alice@example.com To=sip:0031650222333@example.com Gateway=10.0.0.1 Duration=36000 Application=audio\n"},
		{"start", func() (string, error) {
			return formatMaxSessionTime(Request{CallID: "c", From: "f", To: "t", Gateway: "g", Application: "sms", Duration: 5, Connected: true})
		}, "MaxSessionTime CallId=c From=f To=t Gateway=g Duration=5 Application=sms State=Connected\n"},
		{"debit", func() (string, error) {
			return formatDebit(Debit{CallID: "c", From: "f", To: "t", Gateway: "g", Duration: 59})
		}, "DebitBalance CallId=c From=f To=t Gateway=g Duration=59 Application=audio\n"},
		{"debit force", func() (string, error) {
			return formatDebit(Debit{CallID: "c", From: "f", To: "t", Gateway: "g", Duration: 0, Force: true})
		}, "DebitBalance CallId=c From=f To=t Gateway=g Duration=0 Application=audio Force=1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.got()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestFormatRejects(t *testing.T) {
	ok := Request{CallID: "c@h", From: "sip:a@b", To: "sip:1@b", Gateway: "1.2.3.4", Duration: 10}
	tests := []struct {
		name string
		mod  func(*Request)
	}{
		{"space in callid", func(r *Request) { r.CallID = "a b" }},
		{"tab in from", func(r *Request) { r.From = "sip:a\t@b" }},
		{"newline in to", func(r *Request) { r.To = "sip:1@b\nDebitBalance" }},
		{"equals in to", func(r *Request) { r.To = "sip:1@b;user=phone" }},
		{"nul", func(r *Request) { r.Gateway = "1.2\x00" }},
		{"unicode space", func(r *Request) { r.CallID = "a\u00a0b" }},
		{"empty callid", func(r *Request) { r.CallID = "" }},
		{"empty from", func(r *Request) { r.From = "" }},
		{"empty to", func(r *Request) { r.To = "" }},
		{"negative duration", func(r *Request) { r.Duration = -1 }},
		{"bad application", func(r *Request) { r.Application = "a b" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.mod(&r)
			_, err := formatMaxSessionTime(r)
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrNotSent) {
				t.Fatalf("err = %v, want ErrInvalid and ErrNotSent", err)
			}
			d := Debit{CallID: r.CallID, From: r.From, To: r.To, Gateway: r.Gateway, Application: r.Application, Duration: r.Duration}
			if _, err := formatDebit(d); !errors.Is(err, ErrInvalid) {
				t.Fatalf("debit err = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := formatMaxSessionTime(ok); err != nil {
		t.Fatalf("valid request rejected: %v", err)
	}
}

func TestParseMaxSessionTime(t *testing.T) {
	tests := []struct {
		reply   string
		want    MaxTime
		wantErr bool
	}{
		{"600\ntype=prepaid", MaxTime{Kind: Limited, Seconds: 600, Prepaid: true}, false},
		{"0\ntype=prepaid", MaxTime{Kind: Limited, Seconds: 0, Prepaid: true}, false},
		{"none\ntype=postpaid", MaxTime{Kind: Unlimited}, false},
		{"None\nType=Postpaid", MaxTime{Kind: Unlimited}, false},
		{"none\ntype=prepaid", MaxTime{Kind: Unlimited, Prepaid: true}, false},
		{"Locked\ntype=prepaid", MaxTime{Kind: Locked, Prepaid: true}, false},
		{"LOCKED", MaxTime{Kind: Locked, Prepaid: true}, false},
		{"42", MaxTime{Kind: Limited, Seconds: 42, Prepaid: true}, false},
		{"none", MaxTime{Kind: Unlimited}, false},
		{"0", MaxTime{Kind: Limited, Prepaid: true}, false}, // unknown command / no Duration
		{"  600 \n type = prepaid \n", MaxTime{Kind: Limited, Seconds: 600, Prepaid: true}, false},
		{"600\nrate=0.1\ntype=prepaid", MaxTime{Kind: Limited, Seconds: 600, Prepaid: true}, false},
		{"99999999999999999999999", MaxTime{}, true},
		{"2000000000\ntype=prepaid", MaxTime{Kind: Limited, Seconds: maxSeconds, Prepaid: true}, false},
		{"Error: missing CallId parameter", MaxTime{}, true},
		{"error: database down\ntype=prepaid", MaxTime{}, true},
		{"ERROR", MaxTime{}, true},
		{"", MaxTime{}, true},
		{"\n\n", MaxTime{}, true},
		{"-5\ntype=prepaid", MaxTime{}, true},
		{"+5", MaxTime{}, true},
		{"12.5\ntype=prepaid", MaxTime{}, true},
		{"600\ntype=weird", MaxTime{}, true},
		{"hello world", MaxTime{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.reply, func(t *testing.T) {
			got, err := ParseMaxSessionTime(tt.reply)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := ParseMaxSessionTime("Error: x"); !errors.Is(err, ErrEngine) {
		t.Errorf("engine error not marked ErrEngine: %v", err)
	}
}

func TestParseDebit(t *testing.T) {
	tests := []struct {
		reply   string
		want    DebitReply
		wantErr bool
	}{
		{"Ok\nMaxSessionTime=536\n0.1000\nDuration=60", DebitReply{OK: true, MaxSessionTime: 536, Price: "0.1000"}, false},
		{"ok\nmaxsessiontime=0\n0.0000", DebitReply{OK: true, Price: "0.0000"}, false},
		{"OK\nMaxSessionTime=0", DebitReply{OK: true}, false},
		{"Ok\nMaxSessionTime=12\nrate detail", DebitReply{OK: true, MaxSessionTime: 12}, false},
		{"Failed", DebitReply{}, false},
		{"failed\n", DebitReply{}, false},
		{"Ok", DebitReply{OK: true}, true},
		{"Ok\nMaxSessionTime=abc\n0.1", DebitReply{OK: true}, true},
		{"Error: missing Duration parameter", DebitReply{}, true},
		{"0", DebitReply{}, true},
		{"", DebitReply{}, true},
		{"Okay", DebitReply{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.reply, func(t *testing.T) {
			got, err := ParseDebit(tt.reply)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		bufSize int
		max     int
		want    []string // replies in order
		wantErr error    // after the replies
	}{
		{name: "one", stream: "600\ntype=prepaid\n\n", want: []string{"600\ntype=prepaid"}, wantErr: io.EOF},
		{name: "stray newlines", stream: "\n\n\n600\n\n", want: []string{"600"}, wantErr: io.EOF},
		{name: "crlf", stream: "\r\n600\r\ntype=prepaid\r\n\r\n", want: []string{"600\ntype=prepaid"}, wantErr: io.EOF},
		{name: "failed then ok", stream: "Failed\n\n\nOk\nMaxSessionTime=0\n\n", want: []string{"Failed", "Ok\nMaxSessionTime=0"}, wantErr: io.EOF},
		{name: "long line", stream: strings.Repeat("x", 100) + "\n\n", bufSize: 16, want: []string{strings.Repeat("x", 100)}, wantErr: io.EOF},
		{name: "truncated", stream: "600\ntype=pre", wantErr: io.ErrUnexpectedEOF},
		{name: "too large", stream: strings.Repeat("garbage\n", 100), max: 200, wantErr: ErrReplyTooLarge},
		{name: "too many newlines", stream: strings.Repeat("\n", 300), max: 200, wantErr: ErrReplyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size, max := tt.bufSize, tt.max
			if size == 0 {
				size = 4096
			}
			if max == 0 {
				max = 64 << 10
			}
			r := bufio.NewReaderSize(strings.NewReader(tt.stream), size)
			for i, w := range tt.want {
				got, err := readReply(r, max)
				if err != nil {
					t.Fatalf("reply %d: %v", i, err)
				}
				if got != w {
					t.Fatalf("reply %d = %q, want %q", i, got, w)
				}
			}
			if _, err := readReply(r, max); !errors.Is(err, tt.wantErr) {
				t.Fatalf("final err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestNormalizeAddr(t *testing.T) {
	for in, want := range map[string]string{
		"cdr.example.com":      "cdr.example.com:9024",
		"cdr.example.com:9000": "cdr.example.com:9000",
		"10.0.0.1":             "10.0.0.1:9024",
		"::1":                  "[::1]:9024",
		"[::1]":                "[::1]:9024",
		"[::1]:7":              "[::1]:7",
		" host ":               "host:9024",
	} {
		if got := NormalizeAddr(in); got != want {
			t.Errorf("NormalizeAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseMaxSessionTime(f *testing.F) {
	for _, s := range []string{"600\ntype=prepaid", "none\ntype=postpaid", "Locked\ntype=prepaid", "Error: x", "0", "", "\r\n5\r\ntype=prepaid", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mt, err := ParseMaxSessionTime(s)
		if err != nil {
			if mt != (MaxTime{}) {
				t.Fatalf("error with a non-zero answer %+v", mt)
			}
			return
		}
		if mt.Seconds < 0 || mt.Seconds > maxSeconds || mt.Kind < Limited || mt.Kind > Locked {
			t.Fatalf("out of range: %+v", mt)
		}
		if mt.Kind != Limited && mt.Seconds != 0 {
			t.Fatalf("seconds without a limit: %+v", mt)
		}
	})
}

func FuzzParseDebit(f *testing.F) {
	for _, s := range []string{"Ok\nMaxSessionTime=536\n0.1000\nx", "Failed", "Error: missing CallId parameter", "ok\nmaxsessiontime=-1", "Ok\nMaxSessionTime=1\nNaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dr, err := ParseDebit(s)
		if dr.MaxSessionTime < 0 || dr.MaxSessionTime > maxSeconds {
			t.Fatalf("out of range: %+v", dr)
		}
		if err == nil && !dr.OK && (dr.MaxSessionTime != 0 || dr.Price != "") {
			t.Fatalf("Failed with data: %+v", dr)
		}
	})
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"600\ntype=prepaid\n\n", "\n\nFailed\n\n\n", "\r\n1\r\n\r\n", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := bufio.NewReaderSize(strings.NewReader(s), 16)
		for i := 0; i < 1000; i++ {
			reply, err := readReply(r, 256)
			if err != nil {
				return
			}
			if reply == "" || strings.Contains(reply, "\n\n") || strings.HasSuffix(reply, "\r") {
				t.Fatalf("bad reply %q", reply)
			}
		}
	})
}
