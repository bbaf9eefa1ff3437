package dialog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog/dialogtest"
	"github.com/callcontrol/callcontrol/internal/sipdialog"
)

// TestLookupGolden replays the transcripts recorded from the real peers
// (test/e2e TestLookupCapture: a sipp call that rings 2 s, is answered,
// ACKed 1.5 s later, and hung up): our request must be byte for byte the
// one they answered, and their answer must read as the call's state.
func TestLookupGolden(t *testing.T) {
	const callID = "lookup-golden@127.0.0.1"
	// The same dialog in both OpenSIPS forms: db_id (decimal, as
	// call_control's dialogid) and ID (reversed hex).
	os34 := sipdialog.ID{Entry: 0x71f, ID: 0x2844c16f}
	os36 := sipdialog.ID{Entry: 0x71f, ID: 0x43f1a6bd}
	kam := sipdialog.ID{Entry: 1823, ID: 6494}
	ringing := func(d sipdialog.ID) sipdialog.Found {
		return sipdialog.Found{Exists: true, Dialog: d, HasDialog: true}
	}
	answered := func(d sipdialog.ID, at int64) sipdialog.Found {
		return sipdialog.Found{Exists: true, Answered: true, Dialog: d, HasDialog: true, AnsweredAt: time.Unix(at, 0)}
	}
	tests := []struct {
		file   string
		flavor Flavor
		callID string
		want   sipdialog.Found
	}{
		{"kamailio-5.6.3-notfound", Kamailio, "nosuch@127.0.0.1", sipdialog.Found{}},
		{"kamailio-5.6.3-state2", Kamailio, callID, ringing(kam)},
		{"kamailio-5.6.3-state3", Kamailio, callID, answered(kam, 1796072739)},
		{"kamailio-5.6.3-state4", Kamailio, callID, answered(kam, 1796072739)},
		{"kamailio-5.6.3-state5", Kamailio, callID, sipdialog.Found{Ended: true, Dialog: ID{Entry: 1823, ID: 6494}, HasDialog: true,
			AnsweredAt: time.Unix(1796072739, 0), EndedAt: time.Unix(1796072743, 0)}}, // ended, still listed: what it lasted
		{"opensips-3.4.18-notfound", OpenSIPS, "nosuch@127.0.0.1", sipdialog.Found{}},
		{"opensips-3.4.18-state2", OpenSIPS, callID, ringing(os34)},
		{"opensips-3.4.18-state3", OpenSIPS, callID, answered(os34, 1796072750)},
		{"opensips-3.4.18-state4", OpenSIPS, callID, answered(os34, 1796072750)},
		{"opensips-3.4.18-ended", OpenSIPS, callID, sipdialog.Found{}},
		{"opensips-3.6.8-notfound", OpenSIPS, "nosuch@127.0.0.1", sipdialog.Found{}},
		{"opensips-3.6.8-state2", OpenSIPS, callID, ringing(os36)},
		{"opensips-3.6.8-state3", OpenSIPS, callID, answered(os36, 1796072761)},
		{"opensips-3.6.8-state4", OpenSIPS, callID, answered(os36, 1796072761)},
		{"opensips-3.6.8-ended", OpenSIPS, callID, sipdialog.Found{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "lookup", tt.file+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			req, rep, _ := strings.Cut(string(b), "\n")
			got, err := encodeLookup(tt.flavor, 1, tt.callID)
			if err != nil || string(got) != req {
				t.Errorf("encodeLookup = %s, %v; the peer was sent %s", got, err, req)
			}
			found, err := parseLookupReply(tt.flavor, []byte(rep), tt.callID)
			if err != nil {
				t.Fatalf("parseLookupReply: %v", err)
			}
			if found != tt.want {
				t.Errorf("parseLookupReply = %+v, want %+v", found, tt.want)
			}
			if tt.flavor == OpenSIPS && found.HasDialog {
				// ID and db_id name the same dialog.
				i := strings.Index(rep, `"ID":"`) + len(`"ID":"`)
				id, ok := parseOpenSIPSDialogID(rep[i : i+strings.IndexByte(rep[i:], '"')])
				if !ok || id != found.Dialog || openSIPSDialogID(id) != rep[i:i+strings.IndexByte(rep[i:], '"')] {
					t.Errorf("ID %v does not match db_id %v", id, found.Dialog)
				}
			}
		})
	}
}

func TestParseLookupReplyRefuses(t *testing.T) {
	tests := []struct {
		name   string
		flavor Flavor
		reply  string
	}{
		{"plain text", OpenSIPS, "500 Internal error\n"},
		{"MI error", OpenSIPS, `{"jsonrpc":"2.0","error":{"code":500,"message":"Internal error"},"id":"1"}`},
		{"method not found", Kamailio, `{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method Not Found"},"id":1}`},
		{"result not an object", Kamailio, `{"jsonrpc":"2.0","result":"x","id":1}`},
		{"no state", Kamailio, `{"jsonrpc":"2.0","result":{"h_entry":1,"h_id":2,"call-id":"a@b"},"id":1}`},
		{"state not a number", Kamailio, `{"jsonrpc":"2.0","result":{"h_entry":1,"h_id":2,"call-id":"a@b","state":"x"},"id":1}`},
		{"unknown state", OpenSIPS, `{"jsonrpc":"2.0","result":{"Dialog":{"db_id":"1","state":9,"callid":"a@b"}},"id":"1"}`},
		{"no Dialog", OpenSIPS, `{"jsonrpc":"2.0","result":{},"id":"1"}`},
		{"Dialog not an object", OpenSIPS, `{"jsonrpc":"2.0","result":{"Dialog":3},"id":"1"}`},
		{"no result", OpenSIPS, `{"jsonrpc":"2.0","id":"1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f, err := parseLookupReply(tt.flavor, []byte(tt.reply), "a@b"); err == nil {
				t.Errorf("parseLookupReply(%s) = %+v, nil; want an error", tt.reply, f)
			}
		})
	}
}

func TestParseLookupReplySeveral(t *testing.T) {
	tests := []struct {
		name   string
		flavor Flavor
		reply  string
		want   sipdialog.Found
	}{
		{"answered one preferred", Kamailio,
			`{"jsonrpc":"2.0","result":[{"h_entry":1,"h_id":2,"call-id":"a@b","state":2,"start_ts":0},` +
				`{"h_entry":3,"h_id":4,"call-id":"a@b","state":4,"start_ts":100},{"h_entry":5,"h_id":6,"call-id":"a@b","state":1}],"id":1}`,
			sipdialog.Found{Exists: true, Answered: true, Dialog: ID{Entry: 3, ID: 4}, HasDialog: true, AnsweredAt: time.Unix(100, 0)}},
		{"ended one skipped", Kamailio,
			`{"jsonrpc":"2.0","result":[{"h_entry":1,"h_id":2,"call-id":"a@b","state":5,"start_ts":9},{"h_entry":5,"h_id":6,"call-id":"a@b","state":2}],"id":1}`,
			sipdialog.Found{Exists: true, Dialog: ID{Entry: 5, ID: 6}, HasDialog: true}},
		{"other Call-ID ignored", Kamailio,
			`{"jsonrpc":"2.0","result":{"h_entry":1,"h_id":2,"call-id":"x@y","state":4,"start_ts":9},"id":1}`,
			sipdialog.Found{}},
		{"empty list", Kamailio, `{"jsonrpc":"2.0","result":[],"id":1}`, sipdialog.Found{}},
		{"OpenSIPS Dialogs list", OpenSIPS,
			`{"jsonrpc":"2.0","result":{"Dialogs":[{"ID":"1.2","state":2,"callid":"a@b","timestart":0},{"ID":"3.4","state":3,"callid":"a@b","timestart":7}]},"id":"1"}`,
			sipdialog.Found{Exists: true, Answered: true, Dialog: ID{Entry: 3, ID: 4}, HasDialog: true, AnsweredAt: time.Unix(7, 0)}},
		{"OpenSIPS empty Dialogs", OpenSIPS, `{"jsonrpc":"2.0","result":{"Dialogs":[]},"id":"1"}`, sipdialog.Found{}},
		{"no id given", OpenSIPS, `{"jsonrpc":"2.0","result":{"Dialog":{"state":4,"callid":"a@b","timestart":7}},"id":"1"}`,
			sipdialog.Found{Exists: true, Answered: true, AnsweredAt: time.Unix(7, 0)}},
		{"answered, no time", OpenSIPS, `{"jsonrpc":"2.0","result":{"Dialog":{"db_id":"4294967298","state":4,"callid":"a@b","timestart":0}},"id":"1"}`,
			sipdialog.Found{Exists: true, Answered: true, Dialog: ID{Entry: 1, ID: 2}, HasDialog: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLookupReply(tt.flavor, []byte(tt.reply), "a@b")
			if err != nil || got != tt.want {
				t.Errorf("parseLookupReply = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzParseLookupReply(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "lookup", "*.txt"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		_, rep, _ := strings.Cut(string(b), "\n")
		f.Add(strings.HasPrefix(filepath.Base(name), "opensips"), []byte(rep))
	}
	f.Add(false, []byte(`{"jsonrpc":"2.0","result":[{"h_entry":1,"h_id":2,"call-id":"a@b","state":3,"start_ts":5}],"id":1}`))
	f.Fuzz(func(t *testing.T, opensips bool, b []byte) {
		fl := Kamailio
		if opensips {
			fl = OpenSIPS
		}
		got, err := parseLookupReply(fl, b, "lookup-golden@127.0.0.1")
		if err != nil {
			if got != (sipdialog.Found{}) {
				t.Fatalf("error %v with a non-zero Found %+v", err, got)
			}
			return
		}
		if !got.Exists && !got.Ended && got != (sipdialog.Found{}) {
			t.Fatalf("not found, yet %+v", got)
		}
		if got.Exists && got.Ended || got.Answered && got.Ended {
			t.Fatalf("ended, yet live: %+v", got)
		}
		if !got.Answered && !got.Ended && !got.AnsweredAt.IsZero() {
			t.Fatalf("ringing with an answer time: %+v", got)
		}
		if !got.Ended && !got.EndedAt.IsZero() {
			t.Fatalf("an end time, not ended: %+v", got)
		}
	})
}

// TestLookupAgainstFake: Lookup over the socket, against the shared fake
// in each state, for both flavors.
func TestLookupAgainstFake(t *testing.T) {
	for _, flavor := range []Flavor{Kamailio, OpenSIPS} {
		t.Run(flavor.String(), func(t *testing.T) {
			fake, proxy := startFake(t, flavor)
			h := newClient(t, Options{Flavor: flavor, ProxySocket: proxy, Timeout: 5 * time.Second})
			d := ID{Entry: 3313, ID: 4271}
			tests := []struct {
				name string
				set  *dialogtest.Dialog
				want sipdialog.Found
			}{
				{"unknown", nil, sipdialog.Found{}},
				{"ringing", &dialogtest.Dialog{State: 2, Entry: d.Entry, ID: d.ID}, sipdialog.Found{Exists: true, Dialog: d, HasDialog: true}},
				{"answered, no ACK", &dialogtest.Dialog{State: 3, Entry: d.Entry, ID: d.ID, StartTS: 1796072739},
					sipdialog.Found{Exists: true, Answered: true, Dialog: d, HasDialog: true, AnsweredAt: time.Unix(1796072739, 0)}},
				{"confirmed", &dialogtest.Dialog{State: 4, Entry: d.Entry, ID: d.ID, StartTS: 1796072739},
					sipdialog.Found{Exists: true, Answered: true, Dialog: d, HasDialog: true, AnsweredAt: time.Unix(1796072739, 0)}},
				{"ended", &dialogtest.Dialog{State: 5, Entry: d.Entry, ID: d.ID, StartTS: 1796072739, EndTS: 1796072743},
					endedFound(flavor, d, 1796072739, 1796072743)},
			}
			for i, tt := range tests {
				callID := fmt.Sprintf("call-%d@fake", i)
				if tt.set != nil {
					fake.SetDialog(callID, *tt.set)
				}
				got, err := h.client.Lookup(context.Background(), callID)
				if err != nil || got != tt.want {
					t.Errorf("%s: Lookup = %+v, %v; want %+v", tt.name, got, err, tt.want)
				}
			}
			fake.SetAnswer(dialogtest.AnswerNotFound)
			if got, err := h.client.Lookup(context.Background(), "call-3@fake"); err != nil || got.Exists {
				t.Errorf("proxy says not found: Lookup = %+v, %v; want not found", got, err)
			}
			if n := len(fake.Lookups()); n != len(tests)+1 {
				t.Errorf("fake saw %d lookups, want %d", n, len(tests)+1)
			}
			if fake.Len() != 0 {
				t.Errorf("lookups were counted as %d dialog ends", fake.Len())
			}
		})
	}
}

// TestLookupNoUsableAnswer: every way of not answering is an error, and
// none waits past the client's Timeout or the caller's ctx.
func TestLookupNoUsableAnswer(t *testing.T) {
	tests := []struct {
		name    string
		answer  dialogtest.Answer
		timeout time.Duration // Options.Timeout
		ctx     time.Duration // 0: none
		wantErr string
	}{
		{"mute, client timeout", dialogtest.AnswerNone, 100 * time.Millisecond, 0, "no answer"},
		{"mute, ctx deadline", dialogtest.AnswerNone, time.Hour, 100 * time.Millisecond, "deadline exceeded"},
		{"plain text", dialogtest.AnswerPlainText, 100 * time.Millisecond, 0, "no answer"},
		{"answer to another id", dialogtest.AnswerWrongID, 100 * time.Millisecond, 0, "no answer"},
		{"MI error", dialogtest.AnswerError, time.Hour, 0, "error 500"},
	}
	for _, flavor := range []Flavor{Kamailio, OpenSIPS} {
		for _, tt := range tests {
			t.Run(flavor.String()+" "+tt.name, func(t *testing.T) {
				fake, proxy := startFake(t, flavor)
				fake.SetDialog("a@b", dialogtest.Dialog{State: 4, Entry: 1, ID: 2, StartTS: 5})
				fake.SetAnswer(tt.answer)
				h := newClient(t, Options{Flavor: flavor, ProxySocket: proxy, Timeout: tt.timeout})
				ctx := context.Background()
				if tt.ctx > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.ctx)
					defer cancel()
				}
				got, err := h.client.Lookup(ctx, "a@b")
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || got != (sipdialog.Found{}) {
					t.Errorf("Lookup = %+v, %v; want an error with %q", got, err, tt.wantErr)
				}
			})
		}
	}
}

func TestLookupProxyDown(t *testing.T) {
	dir := dialogtest.SocketDir(t)
	h := newClient(t, Options{Flavor: OpenSIPS, ProxySocket: filepath.Join(dir, "missing.sock"), Timeout: time.Hour})
	_, err := h.client.Lookup(context.Background(), "a@b")
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Lookup with no proxy socket: %v, want a no such file error at once", err)
	}
	h.client.Close()
	if _, err := h.client.Lookup(context.Background(), "a@b"); err == nil {
		t.Error("Lookup after Close: no error")
	}
}

// TestLookupsAndEndsDoNotCross: lookups and ends in flight together on
// one socket. Ends are answered 404 (Gone) and lookups with their own
// dialog: an end that took a lookup's answer would be Confirmed, a lookup
// that took an end's 404 would find nothing, a lookup that took another's
// answer would find another dialog.
func TestLookupsAndEndsDoNotCross(t *testing.T) {
	const n = 60
	for _, flavor := range []Flavor{Kamailio, OpenSIPS} {
		t.Run(flavor.String(), func(t *testing.T) {
			fake, proxy := startFake(t, flavor)
			fake.SetAnswer(dialogtest.AnswerNotFound)
			fake.SetAnswerFunc(func(r dialogtest.Request) dialogtest.Answer {
				if r.CallID != "" {
					return dialogtest.AnswerOK
				}
				return dialogtest.AnswerNotFound
			})
			var mu sync.Mutex
			outcomes := map[Outcome]int{}
			allDone := make(chan struct{})
			h := newClient(t, Options{Flavor: flavor, ProxySocket: proxy, Timeout: 10 * time.Second,
				OnDone: func(_ Target, o Outcome) {
					mu.Lock()
					outcomes[o]++
					if outcomes[Gone]+outcomes[Confirmed] == n {
						close(allDone)
					}
					mu.Unlock()
				}})
			for i := range n {
				fake.SetDialog(fmt.Sprintf("look-%d@x", i), dialogtest.Dialog{State: 4, Entry: uint32(i), ID: uint32(1000 + i), StartTS: int64(100 + i)})
			}
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Add(2)
				go func() {
					defer wg.Done()
					h.client.End(Target{CallID: fmt.Sprintf("end-%d@x", i), Dialog: ID{Entry: uint32(i), ID: uint32(1000 + i)}})
				}()
				go func() {
					defer wg.Done()
					got, err := h.client.Lookup(context.Background(), fmt.Sprintf("look-%d@x", i))
					want := sipdialog.Found{Exists: true, Answered: true, Dialog: ID{Entry: uint32(i), ID: uint32(1000 + i)},
						HasDialog: true, AnsweredAt: time.Unix(int64(100+i), 0)}
					if err != nil || got != want {
						errs <- fmt.Errorf("lookup %d = %+v, %v; want %+v", i, got, err, want)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			select {
			case <-allDone:
			case <-time.After(20 * time.Second):
				t.Fatal("dialog ends not all answered")
			}
			mu.Lock()
			defer mu.Unlock()
			if outcomes[Gone] != n || outcomes[Confirmed] != 0 {
				t.Errorf("end outcomes %v, want %d gone and none confirmed", outcomes, n)
			}
			if len(fake.Lookups()) != n || fake.Len() != n {
				t.Errorf("fake saw %d lookups and %d ends, want %d each", len(fake.Lookups()), fake.Len(), n)
			}
		})
	}
}

// TestLateLookupAnswerEndsNothing: a lookup's answer that comes after the
// lookup gave up, while an end is pending, is dropped: the end waits for
// its own answer.
func TestLateLookupAnswerEndsNothing(t *testing.T) {
	for _, flavor := range []Flavor{Kamailio, OpenSIPS} {
		t.Run(flavor.String(), func(t *testing.T) {
			fake, proxy := startFake(t, flavor)
			fake.SetAnswer(dialogtest.AnswerNone)
			fake.SetDialog("a@b", dialogtest.Dialog{State: 4, Entry: 1, ID: 2, StartTS: 5})
			done := make(chan Outcome, 1)
			h := newClient(t, Options{Flavor: flavor, ProxySocket: proxy, Timeout: 200 * time.Millisecond,
				MaxRetryWait: time.Hour, OnDone: func(_ Target, o Outcome) { done <- o }})
			h.client.End(Target{CallID: "end@b", Dialog: ID{Entry: 7, ID: 8}})
			end := fake.WaitFor(1, 5*time.Second)[0]
			if _, err := h.client.Lookup(context.Background(), "a@b"); err == nil {
				t.Fatal("Lookup of a mute proxy: no error")
			}
			// The end's own retries look end@b up first (Kamailio); only
			// the test's lookup of a@b counts here.
			var lookups []dialogtest.Request
			for _, l := range fake.Lookups() {
				if l.CallID == "a@b" {
					lookups = append(lookups, l)
				}
			}
			if len(lookups) != 1 {
				t.Fatalf("fake saw %d lookups of a@b, want 1", len(lookups))
			}
			if err := fake.ReplyTo(lookups[0], dialogtest.AnswerOK); err != nil {
				t.Fatal(err)
			}
			// The reader logs a reply it matches to nothing; once it has,
			// the late answer is behind us.
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(h.logs.String(), "reply to no pending request"); {
				if time.Now().After(deadline) {
					t.Fatalf("the late lookup answer was not seen and dropped; log:\n%s", h.logs)
				}
				time.Sleep(10 * time.Millisecond)
			}
			select {
			case o := <-done:
				t.Fatalf("the late lookup answer settled the end: %v", o)
			default:
			}
			if err := fake.ReplyTo(end, dialogtest.AnswerOK); err != nil {
				t.Fatal(err)
			}
			select {
			case o := <-done:
				if o != Confirmed {
					t.Errorf("end outcome %v, want confirmed", o)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the end's own answer did not settle it")
			}
		})
	}
}

// endedFound is what a lookup finds of an ended dialog: Kamailio still
// lists it, with what it lasted; OpenSIPS answers 404.
func endedFound(f Flavor, d ID, start, end int64) sipdialog.Found {
	if f == OpenSIPS {
		return sipdialog.Found{}
	}
	return sipdialog.Found{Ended: true, Dialog: d, HasDialog: true, AnsweredAt: time.Unix(start, 0), EndedAt: time.Unix(end, 0)}
}
