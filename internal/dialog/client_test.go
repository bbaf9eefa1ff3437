package dialog

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
)

// recorder collects outcomes reported through Options.onResult.
type recorder struct {
	mu      sync.Mutex
	byCall  map[string][]outcome
	n       int
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{byCall: map[string][]outcome{}, changed: make(chan struct{})}
}

func (r *recorder) add(t Target, o outcome) {
	r.mu.Lock()
	r.byCall[t.CallID] = append(r.byCall[t.CallID], o)
	r.n++
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) wait(t *testing.T, n int, timeout time.Duration) map[string][]outcome {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		got, ch := r.n, r.changed
		if got >= n {
			out := make(map[string][]outcome, len(r.byCall))
			for k, v := range r.byCall {
				out[k] = append([]outcome(nil), v...)
			}
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d outcomes after %v, want %d", got, timeout, n)
		}
	}
}

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lineWith returns the first log line containing every part.
func (l *logBuf) lineWith(parts ...string) string {
	for _, line := range strings.Split(l.String(), "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				ok = false
				break
			}
		}
		if ok {
			return line
		}
	}
	return ""
}

type harness struct {
	client *Client
	rec    *recorder
	logs   *logBuf
	dir    string
}

// startFake starts a fake proxy of flavor on a socket of its own and
// returns it with the socket's path.
func startFake(t *testing.T, flavor Flavor) (*dialogtest.Fake, string) {
	t.Helper()
	proxyPath := filepath.Join(dialogtest.SocketDir(t), "proxy.sock")
	if flavor == Kamailio {
		return dialogtest.NewKamailio(t, proxyPath), proxyPath
	}
	return dialogtest.NewOpenSIPS(t, proxyPath), proxyPath
}

func newClient(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{rec: newRecorder(), logs: &logBuf{}}
	if opts.LocalSocket == "" {
		h.dir = dialogtest.SocketDir(t)
		opts.LocalSocket = filepath.Join(h.dir, "dialog.sock")
	}
	opts.onResult = h.rec.add
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(opts, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h.client = c
	return h
}

func TestClientWireAndAnswers(t *testing.T) {
	target := Target{CallID: "6432622xvv@1", Dialog: ID{Entry: 1079, ID: 6296}}
	tests := []struct {
		name    string
		flavor  Flavor
		key     OpenSIPSKey
		answer  dialogtest.Answer
		wantRaw string
		want    outcome
		wantLog []string
	}{
		{name: "kamailio ok", flavor: Kamailio, answer: dialogtest.AnswerOK, want: outcomeOK,
			wantRaw: `{"jsonrpc":"2.0","method":"dlg.end_dlg","params":[1079,6296],"id":1}`,
			wantLog: []string{"level=INFO", "dialog ended", "callid=6432622xvv@1", "dialog=1079:6296"}},
		{name: "kamailio gone", flavor: Kamailio, answer: dialogtest.AnswerNotFound, want: outcomeGone,
			wantLog: []string{"level=INFO", "dialog already gone", "callid=6432622xvv@1", "code=404"}},
		{name: "kamailio error", flavor: Kamailio, answer: dialogtest.AnswerError, want: outcomeError,
			wantLog: []string{"level=ERROR", "proxy refused", "will ask again", "callid=6432622xvv@1", "code=500"}},
		{name: "kamailio no answer", flavor: Kamailio, answer: dialogtest.AnswerNone, want: outcomeTimeout,
			wantLog: []string{"level=ERROR", "no answer", "sending them again", "callid=6432622xvv@1"}},
		{name: "opensips ok by call-id", flavor: OpenSIPS, answer: dialogtest.AnswerOK, want: outcomeOK,
			wantRaw: `{"jsonrpc":"2.0","id":"1","method":"dlg_end_dlg","params":{"dialog_id":"6432622xvv@1"}}`,
			wantLog: []string{"level=INFO", "dialog ended", "callid=6432622xvv@1"}},
		{name: "opensips ok by dialog id", flavor: OpenSIPS, key: ByHexID, answer: dialogtest.AnswerOK, want: outcomeOK,
			wantRaw: `{"jsonrpc":"2.0","id":"1","method":"dlg_end_dlg","params":{"dialog_id":"734.8981"}}`,
			wantLog: []string{"dialog ended", "callid=6432622xvv@1"}},
		{name: "opensips gone", flavor: OpenSIPS, answer: dialogtest.AnswerNotFound, want: outcomeGone,
			wantLog: []string{"level=INFO", "dialog already gone", "callid=6432622xvv@1"}},
		{name: "kamailio answers a wrong id", flavor: Kamailio, answer: dialogtest.AnswerWrongID, want: outcomeTimeout,
			wantLog: []string{"level=WARN", "reply to no pending request"}},
		{name: "opensips answers a wrong id", flavor: OpenSIPS, answer: dialogtest.AnswerWrongID, want: outcomeTimeout,
			wantLog: []string{"level=ERROR", "no answer", "sending them again"}},
		{name: "opensips plain-text error", flavor: OpenSIPS, answer: dialogtest.AnswerPlainText, want: outcomeTimeout,
			wantLog: []string{"level=ERROR", "no answer", "callid=6432622xvv@1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, proxyPath := startFake(t, tt.flavor)
			fake.SetAnswer(tt.answer)
			// Short only where the request is sent again (the retry waits
			// follow the timeout): a final answer the fake sends at once
			// is not raced against 300 ms of a loaded machine.
			timeout := 20 * time.Second
			if tt.want != outcomeOK && tt.want != outcomeGone {
				timeout = 300 * time.Millisecond
			}
			h := newClient(t, Options{Flavor: tt.flavor, ProxySocket: proxyPath, OpenSIPSKey: tt.key, idsFromOne: true,
				Timeout: timeout})
			h.client.End(target)
			got := h.rec.wait(t, 1, 20*time.Second)
			if o := got[target.CallID]; len(o) < 1 || o[0] != tt.want {
				t.Fatalf("outcomes %v, want [%v ...]", o, tt.want)
			}
			final := tt.want == outcomeOK || tt.want == outcomeGone
			reqs := fake.Requests()
			if !final {
				// Neither OK nor "gone": the request stays and is sent again.
				reqs = fake.WaitFor(2, 20*time.Second)
			}
			if final && len(reqs) != 1 {
				t.Fatalf("fake got %d requests, want 1", len(reqs))
			}
			if !reqs[0].Valid {
				t.Fatalf("fake refused request %s", reqs[0].Raw)
			}
			if tt.wantRaw != "" && string(reqs[0].Raw) != tt.wantRaw {
				t.Fatalf("sent  %s\nwant %s", reqs[0].Raw, tt.wantRaw)
			}
			if !final && reqs[1].Key() != reqs[0].Key() {
				t.Fatalf("retry names %s, first attempt %s", reqs[1].Key(), reqs[0].Key())
			}
			if line := h.logs.lineWith(tt.wantLog...); line == "" {
				t.Fatalf("no log line with %q in:\n%s", tt.wantLog, h.logs)
			}
			if tt.answer == dialogtest.AnswerPlainText {
				if h.logs.lineWith("unusable reply", "500 Internal error") == "" {
					t.Fatalf("plain-text error not logged:\n%s", h.logs)
				}
			}
			wantPending := 0
			if !final {
				wantPending = 1
			}
			if n := h.client.Pending(); n != wantPending {
				t.Fatalf("Pending() = %d after the outcome, want %d", n, wantPending)
			}
			// The reply may beat sendto's return, and with it the sent count.
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
				c := h.client.Counts()
				counted := map[outcome]uint64{outcomeOK: c.Confirmed, outcomeGone: c.Gone, outcomeError: c.Refused,
					outcomeTimeout: c.Timeouts}[tt.want]
				ok := counted == 1 && c.Sent == 1
				if !final {
					// Sent again (already seen above): each attempt counts.
					ok = counted >= 1 && c.Sent >= 2 && c.Confirmed == 0 && c.Gone == 0
				}
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Counts() = %+v after outcome %v (final %t)", c, tt.want, final)
				}
			}
		})
	}
}

// TestClientOutOfOrderReplies answers requests in reverse order, plus a
// stray reply, and checks each outcome reaches the right Call-ID.
func TestClientOutOfOrderReplies(t *testing.T) {
	dir := dialogtest.SocketDir(t)
	proxyPath := filepath.Join(dir, "proxy.sock")
	peer, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: proxyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	h := newClient(t, Options{Flavor: Kamailio, ProxySocket: proxyPath, Timeout: 30 * time.Second})

	const n = 5
	for i := range n {
		h.client.End(Target{CallID: fmt.Sprintf("call-%d", i), Dialog: ID{Entry: uint32(i), ID: uint32(100 + i)}})
	}
	type got struct {
		id    string
		entry int
		from  *net.UnixAddr
	}
	var reqs []got
	buf := make([]byte, 65536)
	peer.SetReadDeadline(time.Now().Add(20 * time.Second))
	for range n {
		m, from, err := peer.ReadFromUnix(buf)
		if err != nil {
			t.Fatal(err)
		}
		var id, entry, hid int
		if _, err := fmt.Sscanf(string(buf[:m]), `{"jsonrpc":"2.0","method":"dlg.end_dlg","params":[%d,%d],"id":%d}`, &entry, &hid, &id); err != nil {
			t.Fatalf("unexpected request %s: %v", buf[:m], err)
		}
		reqs = append(reqs, got{id: fmt.Sprint(id), entry: entry, from: from})
	}
	if _, err := peer.WriteToUnix([]byte(`{"jsonrpc":"2.0","result":{},"id":999}`), reqs[0].from); err != nil {
		t.Fatal(err)
	}
	// Reverse order; even entries succeed, odd ones are gone.
	for i := n - 1; i >= 0; i-- {
		r := reqs[i]
		body := `{"jsonrpc":"2.0","result":{},"id":` + r.id + `}`
		if r.entry%2 == 1 {
			body = `{"jsonrpc":"2.0","error":{"code":404,"message":"Dialog not found"},"id":` + r.id + `}`
		}
		if _, err := peer.WriteToUnix([]byte(body), r.from); err != nil {
			t.Fatal(err)
		}
	}
	outcomes := h.rec.wait(t, n, 20*time.Second)
	for i := range n {
		want := outcomeOK
		if i%2 == 1 {
			want = outcomeGone
		}
		if o := outcomes[fmt.Sprintf("call-%d", i)]; len(o) != 1 || o[0] != want {
			t.Errorf("call-%d: outcomes %v, want [%v]", i, o, want)
		}
	}
	if h.logs.lineWith("reply to no pending request", "id=999") == "" {
		t.Errorf("stray reply not logged:\n%s", h.logs)
	}
}

// TestClientKamailioStopBeforeReply mimics Kamailio: before answering it
// waits for something only our side can do (answering `stop`). End must
// keep returning at once meanwhile.
func TestClientKamailioStopBeforeReply(t *testing.T) {
	dir := dialogtest.SocketDir(t)
	proxyPath := filepath.Join(dir, "proxy.sock")
	fake := dialogtest.NewKamailio(t, proxyPath)
	stopAnswered := make(chan struct{})
	var once sync.Once
	fake.SetHook(func(dialogtest.Request) {
		once.Do(func() {
			select {
			case <-stopAnswered:
			case <-time.After(30 * time.Second):
			}
		})
	})
	h := newClient(t, Options{Flavor: Kamailio, ProxySocket: proxyPath, Timeout: 60 * time.Second})

	h.client.End(Target{CallID: "first", Dialog: ID{Entry: 1, ID: 1}})
	fake.WaitFor(1, 20*time.Second)
	// The proxy is now blocked on us; the proxy-path goroutine keeps calling End.
	const more = 100
	for i := range more {
		h.client.End(Target{CallID: fmt.Sprintf("more-%d", i), Dialog: ID{Entry: 2, ID: uint32(i)}})
	}
	if p := h.client.Pending(); p != more+1 {
		t.Fatalf("Pending() = %d, want %d", p, more+1)
	}
	close(stopAnswered)
	outcomes := h.rec.wait(t, more+1, 30*time.Second)
	for call, o := range outcomes {
		if len(o) != 1 || o[0] != outcomeOK {
			t.Errorf("%s: outcomes %v", call, o)
		}
	}
	if got := len(fake.Requests()); got != more+1 {
		t.Fatalf("fake got %d requests, want %d", got, more+1)
	}
}

// TestClientBackPressure ends 10,000 calls at once against a proxy whose
// receive queue fills (it pauses, then reads): every request must arrive
// exactly once.
func TestClientBackPressure(t *testing.T) {
	tests := []struct {
		name      string
		flavor    Flavor
		n         int
		pause     bool          // stop reading until sends are refused
		readDelay time.Duration // a slow proxy
	}{
		{name: "kamailio paused", flavor: Kamailio, n: 10000, pause: true},
		{name: "opensips paused", flavor: OpenSIPS, n: 10000, pause: true},
		{name: "kamailio slow reader", flavor: Kamailio, n: 1000, readDelay: 200 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.n
			fake, proxyPath := startFake(t, tt.flavor)
			fake.SetReadDelay(tt.readDelay)
			if tt.pause {
				fake.Pause()
			}
			h := newClient(t, Options{Flavor: tt.flavor, ProxySocket: proxyPath, Timeout: 60 * time.Second})

			var wg sync.WaitGroup
			const workers = 8
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < n; i += workers {
						h.client.End(Target{CallID: fmt.Sprintf("bp-%d", i), Dialog: ID{Entry: uint32(i >> 8), ID: uint32(i)}})
					}
				}()
			}
			wg.Wait()
			// Wait until the kernel refuses sends before letting the proxy read.
			deadline := time.Now().Add(20 * time.Second)
			for h.client.refused.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if h.client.refused.Load() == 0 {
				t.Fatal("no send was ever refused: the test did not exercise back-pressure")
			}
			fake.Resume()

			reqs := fake.WaitFor(n, 120*time.Second)
			outcomes := h.rec.wait(t, n, 120*time.Second)
			seen := make(map[string]int, n)
			for _, r := range reqs {
				if !r.Valid {
					t.Fatalf("invalid request %s", r.Raw)
				}
				seen[r.Key()]++
			}
			for i := range n {
				key := fmt.Sprintf("bp-%d", i)
				if tt.flavor == Kamailio {
					key = ID{Entry: uint32(i >> 8), ID: uint32(i)}.String()
				}
				if seen[key] != 1 {
					t.Errorf("%s delivered %d times", key, seen[key])
				}
				if o := outcomes[fmt.Sprintf("bp-%d", i)]; len(o) != 1 || o[0] != outcomeOK {
					t.Errorf("bp-%d outcomes %v", i, o)
				}
			}
			if len(reqs) != n {
				t.Errorf("fake got %d requests, want %d", len(reqs), n)
			}
			if p := h.client.Pending(); p != 0 {
				t.Errorf("Pending() = %d at the end", p)
			}
			t.Logf("sends refused and retried: %d", h.client.refused.Load())
		})
	}
}

func TestClientProxyDown(t *testing.T) {
	t.Run("keeps retrying with a log line", func(t *testing.T) {
		dir := dialogtest.SocketDir(t)
		// Refused sends retried every 5 ms at most, not every second: the
		// error line comes after 20 of them, not after 10 s.
		h := newClient(t, Options{Flavor: Kamailio, ProxySocket: filepath.Join(dir, "absent.sock"), maxRefusedWait: 5 * time.Millisecond})
		h.client.End(Target{CallID: "lost-call", Dialog: ID{Entry: 1, ID: 2}})
		h.client.End(Target{CallID: "lost-too", Dialog: ID{Entry: 1, ID: 3}})
		deadline := time.Now().Add(30 * time.Second)
		for h.logs.lineWith("level=ERROR", "refuses end requests", "callid=lost-call") == "" && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if h.logs.lineWith("level=ERROR", "refuses end requests", "callid=lost-call") == "" {
			t.Fatalf("no error line for a proxy that is not there:\n%s", h.logs)
		}
		if p := h.client.Pending(); p != 2 {
			t.Fatalf("Pending() = %d, want 2: nothing is given up", p)
		}
	})
	t.Run("delivers once the proxy is back", func(t *testing.T) {
		dir := dialogtest.SocketDir(t)
		proxyPath := filepath.Join(dir, "proxy.sock")
		h := newClient(t, Options{Flavor: OpenSIPS, ProxySocket: proxyPath})
		h.client.End(Target{CallID: "late-proxy", Dialog: ID{Entry: 1, ID: 2}})
		deadline := time.Now().Add(20 * time.Second)
		for h.client.refused.Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		fake := dialogtest.NewOpenSIPS(t, proxyPath)
		outcomes := h.rec.wait(t, 1, 20*time.Second)
		if o := outcomes["late-proxy"]; len(o) != 1 || o[0] != outcomeOK {
			t.Fatalf("outcomes %v", o)
		}
		if reqs := fake.Requests(); len(reqs) != 1 || reqs[0].DialogID != "late-proxy" {
			t.Fatalf("fake got %+v", reqs)
		}
	})
}

// TestClientClose stops with requests unanswered: none is reported done
// (its record stays for the next start), and one line says how many.
func TestClientClose(t *testing.T) {
	dir := dialogtest.SocketDir(t)
	proxyPath := filepath.Join(dir, "proxy.sock")
	fake := dialogtest.NewKamailio(t, proxyPath)
	fake.SetAnswer(dialogtest.AnswerNone)
	var done atomic.Int64
	h := newClient(t, Options{Flavor: Kamailio, ProxySocket: proxyPath, Timeout: time.Minute,
		OnDone: func(Target, Outcome) { done.Add(1) }})
	for i := range 5 {
		h.client.End(Target{CallID: fmt.Sprintf("c-%d", i), Dialog: ID{Entry: 1, ID: uint32(i)}})
	}
	fake.WaitFor(5, 20*time.Second)
	if p := h.client.Pending(); p != 5 {
		t.Fatalf("Pending() = %d, want 5", p)
	}
	if err := h.client.Close(); err != nil {
		t.Fatal(err)
	}
	if n := done.Load(); n != 0 {
		t.Errorf("OnDone called %d times for requests never answered", n)
	}
	if h.logs.lineWith("level=WARN", "not confirmed at shutdown", "pending=5") == "" {
		t.Errorf("pending requests at shutdown not logged:\n%s", h.logs)
	}
	if _, err := os.Stat(h.client.opts.LocalSocket); !os.IsNotExist(err) {
		t.Errorf("local socket still there: %v", err)
	}
	h.client.End(Target{CallID: "after-close", Dialog: ID{Entry: 1, ID: 9}})
	if h.logs.lineWith("state log", "callid=after-close") == "" {
		t.Errorf("End after Close not logged:\n%s", h.logs)
	}
	if err := h.client.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNew(t *testing.T) {
	dir := dialogtest.SocketDir(t)
	proxy := filepath.Join(dir, "proxy.sock")

	// A stale socket from a previous run is replaced.
	stale := filepath.Join(dir, "stale.sock")
	old, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: stale, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	c, err := New(Options{Flavor: Kamailio, ProxySocket: proxy, LocalSocket: stale}, nil)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	fi, err := os.Stat(stale)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o666 {
		t.Errorf("socket mode %v, want 0666", fi.Mode().Perm())
	}
	if c.opts.Timeout != DefaultTimeout || c.opts.MaxRetryWait != DefaultMaxRetryWait {
		t.Errorf("defaults not applied: %+v", c.opts)
	}
	c.Close()

	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
	}{
		{"no flavor", Options{ProxySocket: proxy, LocalSocket: filepath.Join(dir, "a.sock")}},
		{"no proxy socket", Options{Flavor: Kamailio, LocalSocket: filepath.Join(dir, "a.sock")}},
		{"no local socket", Options{Flavor: OpenSIPS, ProxySocket: proxy}},
		{"local path is a regular file", Options{Flavor: OpenSIPS, ProxySocket: proxy, LocalSocket: regular}},
		{"local dir missing", Options{Flavor: OpenSIPS, ProxySocket: proxy, LocalSocket: filepath.Join(dir, "no", "a.sock")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := New(tt.opts, nil); err == nil {
				c.Close()
				t.Fatal("want error")
			}
		})
	}
	if b, err := os.ReadFile(regular); err != nil || string(b) != "keep me" {
		t.Errorf("regular file touched: %q, %v", b, err)
	}
}
