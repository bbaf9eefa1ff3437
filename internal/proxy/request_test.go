package proxy

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func read(t *testing.T, in string) (Request, error) {
	t.Helper()
	var r Request
	err := ReadRequest(bufio.NewReaderSize(strings.NewReader(in), MaxRequestSize+512), &r)
	return r, err
}

func TestReadRequest(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Request
	}{
		{"opensips init",
			"init\r\nruri: sip:0031650222333@example.com\r\ndiverter: None\r\nsourceip: 10.0.0.1\r\ncallid: 6432622xvv@1\r\n" +
				"from: \"Alice\" <sip:alice@example.com>;tag=a73kszlfl\r\nfromtag: a73kszlfl\r\nprepaid: unknown\r\ncall_limit: 0\r\ncall_token: None\r\n\r\n",
			Request{Command: "init", RURI: "sip:0031650222333@example.com", Diverter: "None", SourceIP: "10.0.0.1",
				CallID: "6432622xvv@1", From: `"Alice" <sip:alice@example.com>;tag=a73kszlfl`, FromTag: "a73kszlfl",
				Prepaid: "unknown", CallLimit: "0", CallToken: "None"}},
		{"kamailio init",
			"init\r\nruri: sip:limited@127.0.0.1:5060\r\ndiverter: None\r\nsourceip: 127.0.0.1\r\ncallid: 1-4711@127.0.0.1\r\n" +
				"from: \"Caller\" <sip:caller@127.0.0.1:5070>\r\nfromtag: 4711SIPpTag001\r\nsip_application: audio\r\n\r\n",
			Request{Command: "init", RURI: "sip:limited@127.0.0.1:5060", Diverter: "None", SourceIP: "127.0.0.1",
				CallID: "1-4711@127.0.0.1", From: `"Caller" <sip:caller@127.0.0.1:5070>`, FromTag: "4711SIPpTag001",
				Application: "audio"}},
		{"start h_entry:h_id", "start\r\ncallid: 6432622xvv@1\r\ndialogid: 1079:6296\r\n\r\n",
			Request{Command: "start", CallID: "6432622xvv@1", DialogID: "1079:6296"}},
		{"start 64-bit", "start\r\ncallid: x\r\ndialogid: 14658149912806\r\n\r\n",
			Request{Command: "start", CallID: "x", DialogID: "14658149912806"}},
		{"stop with LF only and stray blank lines", "\n\r\nstop\ncallid: x\n\n", Request{Command: "stop", CallID: "x"}},
		{"keys case-insensitive, spaces trimmed, unknown keys ignored", "STOP\r\n  CallID :  a b  \r\nX-New: 1\r\n\r\n",
			Request{Command: "stop", CallID: "a b"}},
		{"value with colons", "debug\r\nshow: session\r\ncallid: a:b:c\r\n\r\n",
			Request{Command: "debug", Show: "session", CallID: "a:b:c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := read(t, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestReadRequestMalformedKeepsStep(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("init\r\nno colon here\r\ncallid: a\r\n\r\nstop\r\ncallid: b\r\n\r\n"))
	var req Request
	var m *MalformedError
	if err := ReadRequest(r, &req); !errors.As(err, &m) {
		t.Fatalf("want MalformedError, got %v", err)
	}
	if err := ReadRequest(r, &req); err != nil || req.Command != "stop" || req.CallID != "b" {
		t.Fatalf("next request: %+v %v", req, err)
	}
	if err := ReadRequest(r, &req); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

func TestReadRequestTooLarge(t *testing.T) {
	big := "init\r\nfrom: " + strings.Repeat("a", MaxRequestSize) + "\r\n\r\n"
	if _, err := read(t, big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one long line: want ErrTooLarge, got %v", err)
	}
	many := "init\r\n" + strings.Repeat("x-key: "+strings.Repeat("v", 100)+"\r\n", MaxRequestSize/100) + "\r\n"
	if _, err := read(t, many); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("many lines: want ErrTooLarge, got %v", err)
	}
	justUnder := "init\r\nfrom: " + strings.Repeat("a", MaxRequestSize-100) + "\r\n\r\n"
	if _, err := read(t, justUnder); err != nil {
		t.Fatalf("under the limit: %v", err)
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte("init\r\nruri: sip:a@b\r\ncallid: x\r\nfrom: <sip:a@b>\r\n\r\n"))
	f.Add([]byte("start\r\ncallid: x\r\ndialogid: 1:2\r\n\r\n"))
	f.Add([]byte("\r\n\r\nstop\ncallid:\n\n"))
	f.Add([]byte("debug\r\nshow: sessions\r\nuser: a\r\n\r\n"))
	f.Add([]byte("init\r\nbroken\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Whatever comes first, a well-formed request after it must still be
		// read correctly unless the stream was too large to trust.
		in := string(data) + "\r\n\r\nstop\r\ncallid: sentinel\r\n\r\n"
		r := bufio.NewReaderSize(strings.NewReader(in), MaxRequestSize+512)
		// The --debug reader sees the same requests, and its raw bytes
		// are a piece of the input.
		rr := bufio.NewReaderSize(strings.NewReader(in), MaxRequestSize+512)
		var req, rreq Request
		var raw []byte
		for i := 0; ; i++ {
			err := ReadRequest(r, &req)
			raw = raw[:0]
			rerr := ReadRequestRaw(rr, &rreq, &raw)
			if (err == nil) != (rerr == nil) || req != rreq {
				t.Fatalf("ReadRequestRaw read %+v (%v), ReadRequest %+v (%v)", rreq, rerr, req, err)
			}
			if rerr == nil && !strings.Contains(in, string(raw)) {
				t.Fatalf("raw %q is not from the input", raw)
			}
			if errors.Is(err, ErrTooLarge) {
				return
			}
			var m *MalformedError
			if err != nil && !errors.As(err, &m) {
				t.Fatalf("sentinel never read: %v", err)
			}
			if err == nil && req.Command == "" {
				t.Fatal("request without a command")
			}
			if err == nil && req.Command == "stop" && req.CallID == "sentinel" {
				return
			}
			if i > len(data)+2 {
				t.Fatal("no progress")
			}
		}
	})
}
