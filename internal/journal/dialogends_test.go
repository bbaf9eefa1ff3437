package journal

import (
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/dialog"
)

func TestDialogEndRecordRoundTrip(t *testing.T) {
	for _, p := range []PendingEnd{
		{Target: dialog.Target{CallID: "c@1", Dialog: dialog.ID{Entry: 1079, ID: 6296}}, Since: time.Unix(0, 1700000000123456789)},
		{Target: dialog.Target{CallID: "ringing@2", NoID: true}, Since: time.Unix(1700000000, 0)},
	} {
		got, err := decodeDialogEnd(encodeDialogEnd(p))
		if err != nil || got.Target != p.Target || !got.Since.Equal(p.Since) {
			t.Fatalf("round trip of %+v: %+v %v", p, got, err)
		}
		b := encodeDialogEnd(p)
		for i := range b {
			if _, err := decodeDialogEnd(b[:i]); err == nil {
				t.Fatalf("truncated record (%d of %d bytes) accepted", i, len(b))
			}
		}
	}
}

// TestDialogEndsOrder: the oldest pending end is found without a walk,
// and one end that never settles does not keep the settled ones around.
func TestDialogEndsOrder(t *testing.T) {
	e := newDialogEnds()
	t0 := time.Unix(1700000000, 0)
	var ts []dialog.Target
	for i := range 300 {
		tg, _ := e.add(dialog.Target{CallID: "c" + string(rune('a'+i%26)) + time.Duration(i).String()}, t0.Add(time.Duration(i)*time.Second))
		ts = append(ts, tg)
	}
	e.done(ts[0], dialog.Confirmed)
	if n, oldest := e.Summary(); n != 299 || !oldest.Equal(t0.Add(time.Second)) {
		t.Fatalf("summary %d %v", n, oldest)
	}
	for _, tg := range ts[2:] {
		e.done(tg, dialog.Gone)
	}
	if n, oldest := e.Summary(); n != 1 || !oldest.Equal(t0.Add(time.Second)) {
		t.Fatalf("summary %d %v", n, oldest)
	}
	if len(e.order) > 2*len(e.byRef)+64 {
		t.Fatalf("order holds %d references for %d pending ends", len(e.order), len(e.byRef))
	}
	if got := e.Oldest(5); len(got) != 1 || got[0].Target.Ref != ts[1].Ref {
		t.Fatalf("oldest %+v", got)
	}
	if p, ok := e.ByCallID(ts[1].CallID); !ok || p.Target.Ref != ts[1].Ref {
		t.Fatalf("byCallID %+v %v", p, ok)
	}
	if e.done(ts[5], dialog.Confirmed) {
		t.Fatal("a settled end settled twice")
	}
}

func FuzzDecodeDialogEnd(f *testing.F) {
	f.Add(encodeDialogEnd(PendingEnd{Target: dialog.Target{CallID: "c", Dialog: dialog.ID{Entry: 1, ID: 2}}, Since: time.Unix(1, 0)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := decodeDialogEnd(b); err == nil && p.Target.CallID == "" {
			t.Fatal("record without a Call-ID")
		}
	})
}
