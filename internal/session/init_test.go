package session

import (
	"testing"

	"github.com/callcontrol/callcontrol/internal/rating"
)

// TestInitCleanup checks the one cleanup of an init, decision by
// decision: what the engine is owed, whether the asked mark is cleared,
// and whether the call stays in the table.
func TestInitCleanup(t *testing.T) {
	const party = "sip:alice@example.com"
	tests := []struct {
		name    string
		d       initDecision
		asked   bool // the engine was asked: the mark is written
		tracked bool // the call is in the table (a Limited init before)
		debit   string
		marked  bool // the asked mark is left
		inTable bool
	}{
		{"keep, nothing set up", answer(ReplyError), false, false, "", false, false},
		{"keep, Limited", answer(ReplyLimited), false, true, "", false, true},
		{"let go, nothing asked nor carried", letGoOf(ReplyError, ""), false, false, "", false, false},
		{"let go, asked, nothing owed: mark cleared", letGoOf(ReplyLocked, ""), true, false, "", false, false},
		{"let go, carried engine: released", letGoOf(ReplyCallLimitReached, "e1"), false, false, "e1", false, false},
		{"let go, asked, engine may count it: released", letGoOf(ReplyNoCredit, "e1"), true, false, "e1", false, false},
		{"abandon: ended, its debit owed", initDecision{done: true, reply: ReplyError, cleanup: abandonCall}, false, true, "engine1", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(60))
			r := initReq("c1", "alice", "true")
			c := initCall{party: party, app: "audio", asked: tt.asked}
			if tt.tracked {
				if got := f.m.Init(r, f.m.now()); got != ReplyLimited {
					t.Fatalf("init = %q", got)
				}
				f.m.mu.Lock()
				c.s = f.m.calls["c1"]
				f.m.mu.Unlock()
			}
			if tt.asked {
				f.j.Asked(&Session{CallID: "c1", Engine: "e1"})
			}
			before := len(f.j.owed())

			f.m.cleanUp(&c, r, tt.d)

			owed := f.j.owed()[before:]
			switch {
			case tt.debit == "" && len(owed) != 0:
				t.Errorf("owed %+v, want nothing", owed)
			case tt.debit != "" && (len(owed) != 1 || owed[0].Engine != tt.debit || owed[0].Debit != rating.Debit{CallID: "c1",
				From: party, To: r.RURI, Gateway: r.SourceIP, Application: "audio", Duration: 0}):
				t.Errorf("owed %+v, want one 0 s debit to %s", owed, tt.debit)
			}
			if marked := f.j.unsettled() > 0; marked != tt.marked {
				t.Errorf("asked mark left: %v, want %v", marked, tt.marked)
			}
			if _, ok := f.m.Get("c1"); ok != tt.inTable {
				t.Errorf("in the table: %v, want %v", ok, tt.inTable)
			}
		})
	}
}
