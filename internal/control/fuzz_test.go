package control_test

import (
	"testing"

	"github.com/callcontrol/callcontrol/internal/control"
)

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"cmd":"sessions","prefix":"sip:alice"}`,
		`{"cmd":"session","call_id":"a@1"}`,
		`{"v":2,"cmd":"stats"}`,
		`{"cmd":7}`,
		`[]`,
		``,
		`{"cmd":"terminate","call_id":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := control.DecodeRequest(line)
		if err == nil && req.V != 0 && req.V != control.Version {
			t.Fatalf("accepted version %d", req.V)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"ok":true,"sessions":[{"call_id":"a","limit":-1,"remaining":-1,"created":"2026-03-01T12:00:00Z"}]}`,
		`{"ok":false,"code":"not_found","error":"call id x does not exist"}`,
		`{"ok":true,"stats":{"sessions":{"pending":1},"uptime_seconds":5400}}`,
		`{"ok":false}`,
		`{"ok":true,"stats":{"uptime_seconds":"x"}}`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		resp, err := control.DecodeResponse(line)
		if err == nil && !resp.OK && resp.Error == "" {
			t.Fatal("error reply without a message")
		}
	})
}
