package dialogtest

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// exchange sends one datagram to the fake from a named socket and returns
// the reply, or "" if none came within wait.
func exchange(t *testing.T, f *Fake, dir, req string, wait time.Duration) string {
	t.Helper()
	local := filepath.Join(dir, "client.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteToUnix([]byte(req), &net.UnixAddr{Name: f.Path(), Net: "unixgram"}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func TestFakeReplies(t *testing.T) {
	tests := []struct {
		name    string
		flavor  Flavor
		answer  Answer
		req     string
		want    string
		wantKey string
		valid   bool
	}{
		{"kamailio ok", Kamailio, AnswerOK, `{"jsonrpc":"2.0","method":"dlg.end_dlg","params":[1079,6296],"id":1}`,
			`{"jsonrpc":"2.0","result":{},"id":1}`, "1079:6296", true},
		{"kamailio numeric strings", Kamailio, AnswerOK, `{"jsonrpc":"2.0","method":"dlg.end_dlg","params":["1079","6296"],"id":2}`,
			`{"jsonrpc":"2.0","result":{},"id":2}`, "1079:6296", true},
		{"kamailio one string refused", Kamailio, AnswerOK, `{"jsonrpc":"2.0","method":"dlg.end_dlg","params":["1079:6296"],"id":3}`,
			`{"jsonrpc":"2.0","error":{"code":500,"message":"Invalid parameters"},"id":3}`, "0:0", false},
		{"kamailio 404", Kamailio, AnswerNotFound, `{"jsonrpc":"2.0","method":"dlg.end_dlg","params":[1,2],"id":4}`,
			`{"jsonrpc":"2.0","error":{"code":404,"message":"Dialog not found"},"id":4}`, "1:2", true},
		{"opensips ok", OpenSIPS, AnswerOK, `{"jsonrpc":"2.0","id":"1a2b","method":"dlg_end_dlg","params":{"dialog_id":"abc@h"}}`,
			`{"jsonrpc":"2.0","id":"1a2b","result":"OK"}`, "abc@h", true},
		{"opensips number refused", OpenSIPS, AnswerOK, `{"jsonrpc":"2.0","id":"5","method":"dlg_end_dlg","params":{"dialog_id":4634269718683}}`,
			`{"jsonrpc":"2.0","id":"5","error":{"code":-32602,"message":"Invalid params"}}`, "0:0", false},
		{"opensips plain text", OpenSIPS, AnswerPlainText, `{"jsonrpc":"2.0","id":"6","method":"dlg_end_dlg","params":{"dialog_id":"x"}}`,
			"500 Internal error\n", "x", true},
		{"opensips parse error", OpenSIPS, AnswerOK, `{"jsonrpc":`, "400 Parse_error\n", "0:0", false},
		{"no answer", OpenSIPS, AnswerNone, `{"jsonrpc":"2.0","id":"7","method":"dlg_end_dlg","params":{"dialog_id":"x"}}`,
			"", "x", true},
		{"unknown method", Kamailio, AnswerOK, `{"jsonrpc":"2.0","method":"core.nosuch","id":8}`,
			`{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":8}`, "0:0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := SocketDir(t)
			var f *Fake
			if tt.flavor == Kamailio {
				f = NewKamailio(t, filepath.Join(dir, "proxy.sock"))
			} else {
				f = NewOpenSIPS(t, filepath.Join(dir, "proxy.sock"))
			}
			f.SetAnswer(tt.answer)
			wait := 10 * time.Second
			if tt.want == "" {
				wait = 200 * time.Millisecond
			}
			if got := exchange(t, f, dir, tt.req, wait); got != tt.want {
				t.Fatalf("reply %q, want %q", got, tt.want)
			}
			reqs := f.WaitFor(1, 10*time.Second)
			if len(reqs) != 1 || string(reqs[0].Raw) != tt.req || reqs[0].Valid != tt.valid || reqs[0].Key() != tt.wantKey {
				t.Fatalf("recorded %+v", reqs)
			}
			if reqs[0].At.IsZero() {
				t.Fatal("arrival time not recorded")
			}
		})
	}
}

func TestFakePauseAndHook(t *testing.T) {
	dir := SocketDir(t)
	f := NewKamailio(t, filepath.Join(dir, "proxy.sock"))
	hooked := make(chan Request, 1)
	f.SetHook(func(r Request) { hooked <- r })
	time.Sleep(20 * time.Millisecond) // let the fake block in its read first
	f.Pause()
	req := `{"jsonrpc":"2.0","method":"dlg.end_dlg","params":[1,2],"id":1}`
	done := make(chan string, 1)
	go func() { done <- exchange(t, f, dir, req, 20*time.Second) }()
	time.Sleep(50 * time.Millisecond) // let it sit in the kernel queue
	if n := f.Len(); n != 0 {
		t.Fatalf("paused fake read %d requests", n)
	}
	f.Resume()
	if got := <-done; got != `{"jsonrpc":"2.0","result":{},"id":1}` {
		t.Fatalf("reply %q", got)
	}
	if r := <-hooked; r.Key() != "1:2" {
		t.Fatalf("hook saw %+v", r)
	}
}
