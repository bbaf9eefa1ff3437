package daemon

import (
	"testing"

	"github.com/callcontrol/callcontrol/internal/session"
)

// proxy-protocol.md, "Replies to init" and start/stop: the module compares
// the whole reply line with these words (case-insensitively); anything
// else is taken as Error (-5). Pinned here to the spec's text, not to the
// proxy package's constants.
func TestReplyWordsAreTheSpecs(t *testing.T) {
	for _, tt := range []struct {
		r    session.Reply
		want string
	}{
		{session.ReplyNoLimit, "No limit"},
		{session.ReplyLimited, "Limited"},
		{session.ReplyNoCredit, "No credit"},
		{session.ReplyLocked, "Locked"},
		{session.ReplyDuplicatedCallID, "Duplicated callid"},
		{session.ReplyCallLimitReached, "Call limit reached"},
		{session.ReplyError, "Error"},
		{session.ReplyOk, "Ok"},
		{session.ReplyNotFound, "Not found"},
	} {
		if got := words(tt.r); got != tt.want {
			t.Errorf("%v is sent as %q, the module expects %q", tt.r, got, tt.want)
		}
	}
}
