package journal

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
	"github.com/callcontrol/callcontrol/internal/store/storetest"
)

func restoreTestSession(id string, limit int) *session.Session {
	created := time.Unix(1_700_000_000, 0).Add(time.Duration(len(id)) * time.Second)
	return &session.Session{CallID: id, Party: "sip:" + id + "@example.com", RURI: "sip:0031@example.com", Token: "None",
		Application: "audio", HasDialog: true, Cap: session.NoLimit, Limit: limit, Created: created, Answered: created,
		EndAt: created.Add(time.Duration(limit) * time.Second)}
}

// oldRestore is how the sessions and asked marks were restored before the
// records were decoded as they are read: every record in one map (what
// store.Open returns), decoded afterwards. The reference for the journal.
func oldRestore(live map[string][]byte) (sessions, alone []string, bad int) {
	var asked []*session.Session
	for k, v := range live {
		switch {
		case strings.HasPrefix(k, sessionPrefix):
			s, err := session.Unmarshal(v)
			if err != nil {
				bad++
				continue
			}
			sessions = append(sessions, string(s.Marshal()))
		case strings.HasPrefix(k, askedPrefix):
			s, err := session.Unmarshal(v)
			if err != nil {
				bad++
				continue
			}
			asked = append(asked, s)
		}
	}
	for _, a := range asked {
		if rec, ok := live[sessionPrefix+a.CallID]; ok {
			if _, err := session.Unmarshal(rec); err == nil {
				continue
			}
		}
		alone = append(alone, a.CallID)
	}
	slices.Sort(sessions)
	slices.Sort(alone)
	return sessions, alone, bad
}

// restoredByJournal opens dir as the daemon does and returns what
// RestoredSessions hands out, and what it logged.
func restoredByJournal(t *testing.T, dir string) (sessions, alone []string, logged string) {
	t.Helper()
	var out bytes.Buffer
	j, err := Open(dir, Options{Store: store.Options{NoSync: true}}, slog.New(slog.NewTextHandler(&out, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close(nil)
	j.RestoredAtAnswer()
	ss, asked := j.RestoredSessions()
	for _, s := range ss {
		sessions = append(sessions, string(s.Marshal()))
	}
	for _, a := range asked {
		alone = append(alone, a.CallID)
	}
	slices.Sort(sessions)
	slices.Sort(alone)
	return sessions, alone, out.String()
}

// A snapshot, then a log that overrides sessions, removes them, puts
// records that do not decode and puts over those: the sessions decoded as
// they are read are the ones the old restore (every record in a map,
// decoded afterwards) found, the same unreadable ones are reported, and
// the same asked marks are left alone (released) or settled; also with a
// damaged snapshot.
func TestRestoreDecodingAsReadIsTheOldRestore(t *testing.T) {
	src := t.TempDir()
	l, _, err := store.Open(src, store.Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte("\x7fnot a session")
	rec := func(id string, limit int) []byte { return restoreTestSession(id, limit).Marshal() }
	if err := l.Compact(func(put func(string, []byte)) {
		for i := range 200 { // a few chunks of the window would need more: the store's tests do that
			put(sessionPrefix+fmt.Sprint("many-", i), rec(fmt.Sprint("many-", i), 60+i))
		}
		for _, id := range []string{"a", "b", "c", "g"} {
			put(sessionPrefix+id, rec(id, 60))
		}
		put(askedPrefix+"a", rec("a", session.NoLimit)) // beside its session: settled
		put(askedPrefix+"b", rec("b", session.NoLimit)) // its session removed below: alone
		put(askedPrefix+"z", rec("z", session.NoLimit)) // alone
		put(askedPrefix+"bad", garbage)                 // unreadable
		put(atAnswerPrefix+"w", rec("w", 60))
	}); err != nil {
		t.Fatal(err)
	}
	for _, batch := range [][]store.Op{
		{store.Put(sessionPrefix+"a", rec("a", 120))}, // override
		{store.Delete(sessionPrefix + "b")},           // removal
		{store.Put(sessionPrefix+"c", garbage)},       // unreadable: lost
		{store.Put(sessionPrefix+"d", rec("d", 90))},  // new
		{store.Put(sessionPrefix+"e", garbage)},       // unreadable, then good: restored
		{store.Put(sessionPrefix+"e", rec("e", 30))},
		{store.Put(sessionPrefix+"f", rec("f", 30)), store.Delete(sessionPrefix + "f")}, // gone
		{store.Put(sessionPrefix+"g", garbage)},                                         // unreadable, then removed: not reported
		{store.Delete(sessionPrefix + "g")},
		{store.Put(sessionPrefix+"h", rec("h", 30))}, // good, then unreadable: lost
		{store.Put(sessionPrefix+"h", garbage)},
		{store.Delete(sessionPrefix + "many-7")},
		{store.Put(sessionPrefix+"key-differs", rec("other", 45))}, // a record under another Call-ID's key
	} {
		if err := l.Apply(batch...).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()

	damaged := storetest.CopyDir(t, src)
	snap, err := os.ReadFile(filepath.Join(damaged, "snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	snap[len(snap)/2] ^= 0x10
	if err := os.WriteFile(filepath.Join(damaged, "snapshot"), snap, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name, src string
		sessions  int
	}{{"whole", src, 200 - 1 + 4}, {"snapshot damaged", damaged, 200 - 1 + 4 - 1}} {
		t.Run(c.name, func(t *testing.T) {
			l, live, err := store.Open(storetest.CopyDir(t, c.src), store.Options{}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			wantSessions, wantAlone, wantBad := oldRestore(live)
			if len(wantSessions) != c.sessions || wantBad != 3 || !slices.Equal(wantAlone, []string{"b", "z"}) {
				t.Fatalf("the reference restored %d sessions, %d unreadable, alone %v: the test's state is not what it means",
					len(wantSessions), wantBad, wantAlone)
			}
			sessions, alone, logged := restoredByJournal(t, storetest.CopyDir(t, c.src))
			if !slices.Equal(sessions, wantSessions) {
				t.Errorf("restored %d sessions, the old restore %d (or others)", len(sessions), len(wantSessions))
			}
			if !slices.Equal(alone, wantAlone) {
				t.Errorf("asked marks left alone %v, the old restore %v", alone, wantAlone)
			}
			if want := fmt.Sprintf("unreadable=%d restored=%d", wantBad, len(wantSessions)); !strings.Contains(logged, want) {
				t.Errorf("unreadable records not reported as %q:\n%s", want, logged)
			}
		})
	}
}
