package session_test

import (
	"testing"

	"github.com/callcontrol/callcontrol/internal/rating"
	. "github.com/callcontrol/callcontrol/internal/session"
)

// TestInitCleanup checks the one cleanup of an init, decision by
// decision: what the engine is owed, whether the asked mark is cleared,
// and whether the call stays in the table.
func TestInitCleanup(t *testing.T) {
	const party = "sip:alice@example.com"
	tests := []struct {
		name    string
		d       InitDecision
		asked   bool // the engine was asked: the mark is written
		tracked bool // the call is in the table (a Limited init before)
		debit   string
		marked  bool // the asked mark is left
		inTable bool
	}{
		{"keep, nothing set up", Answer(ReplyError), false, false, "", false, false},
		{"keep, Limited", Answer(ReplyLimited), false, true, "", false, true},
		{"let go, nothing asked nor carried", LetGoOf(ReplyError, ""), false, false, "", false, false},
		{"let go, asked, nothing owed: mark cleared", LetGoOf(ReplyLocked, ""), true, false, "", false, false},
		{"let go, carried engine: released", LetGoOf(ReplyCallLimitReached, "e1"), false, false, "e1", false, false},
		{"let go, asked, engine may count it: released", LetGoOf(ReplyNoCredit, "e1"), true, false, "e1", false, false},
		{"abandon: ended, its debit owed", Abandon(), false, true, "engine1", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Limits{Limit: NoLimit, PrepaidLimit: NoLimit}, limited(60))
			r := initReq("c1", "alice", "true")
			if tt.tracked {
				if got := f.m.Init(r, f.m.Now()); got != ReplyLimited {
					t.Fatalf("init = %q", got)
				}
			}
			if tt.asked {
				f.j.Asked(&Session{CallID: "c1", Engine: "e1"})
			}
			before := len(f.j.Debits())

			f.m.CleanUp(r, tt.d, party, "audio", tt.asked, tt.tracked)

			owed := f.j.Debits()[before:]
			switch {
			case tt.debit == "" && len(owed) != 0:
				t.Errorf("owed %+v, want nothing", owed)
			case tt.debit != "" && (len(owed) != 1 || owed[0].Engine != tt.debit || owed[0].Debit != rating.Debit{CallID: "c1",
				From: party, To: r.RURI, Gateway: r.SourceIP, Application: "audio", Duration: 0}):
				t.Errorf("owed %+v, want one 0 s debit to %s", owed, tt.debit)
			}
			if marked := f.j.Unsettled() > 0; marked != tt.marked {
				t.Errorf("asked mark left: %v, want %v", marked, tt.marked)
			}
			if _, ok := f.m.Get("c1"); ok != tt.inTable {
				t.Errorf("in the table: %v, want %v", ok, tt.inTable)
			}
		})
	}
}
