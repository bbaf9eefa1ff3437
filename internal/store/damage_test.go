package store

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/store/storetest"
)

// One byte flipped anywhere in the snapshot's records loses that one
// record: all the others are restored, and the loss is logged with its
// count and file (it once lost every record of the 64 KiB frame it hit).
func TestSnapshotFlipLosesOneRecord(t *testing.T) {
	src, want := buildDir(t, 40, true)
	snap, err := os.ReadFile(filepath.Join(src, snapName))
	if err != nil {
		t.Fatal(err)
	}
	for off := snapHeader; off < len(snap); off++ {
		dir := storetest.CopyDir(t, src)
		b := bytes.Clone(snap)
		b[off] ^= 0x20
		if err := os.WriteFile(filepath.Join(dir, snapName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		capt := newCapture()
		l, live, err := Open(dir, smallRing, slog.New(capt))
		if err != nil {
			t.Fatalf("@%d: Open: %v", off, err)
		}
		l.Close()
		if len(live) != len(want)-1 {
			t.Fatalf("@%d: restored %d records, want %d", off, len(live), len(want)-1)
		}
		for k, v := range live {
			if want[k] != string(v) {
				t.Fatalf("@%d: record %s = %q, want %q", off, k, v, want[k])
			}
		}
		msgs := strings.Join(capt.all(), "\n")
		if !strings.Contains(msgs, "snapshot damaged") || !strings.Contains(msgs, "lost_records=1") ||
			!strings.Contains(msgs, "file="+filepath.Join(dir, snapName)) {
			t.Fatalf("@%d: loss not logged with count and file:\n%s", off, msgs)
		}
	}
}

// A snapshot or segment that the files say should exist, but does not,
// is reported: its records are lost without it.
func TestMissingSnapshotReported(t *testing.T) {
	src, _ := buildDir(t, 40, true)
	dir := storetest.CopyDir(t, src)
	if err := os.Remove(filepath.Join(dir, snapName)); err != nil {
		t.Fatal(err)
	}
	capt := newCapture()
	l, _, err := Open(dir, Options{NoSync: true}, slog.New(capt))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if msgs := strings.Join(capt.all(), "\n"); !strings.Contains(msgs, "missing") {
		t.Fatalf("a deleted snapshot is not reported:\n%s", msgs)
	}

	// A segment after the snapshot deleted.
	dir = storetest.CopyDir(t, src)
	l, _, err = Open(dir, Options{NoSync: true}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, l.Apply(Put("later", []byte("x"))))
	l.Close()
	segs := segFiles(t, dir)
	if len(segs) < 2 {
		t.Fatalf("segments %v", segs)
	}
	os.Remove(segs[0])
	capt = newCapture()
	l, _, err = Open(dir, Options{NoSync: true}, slog.New(capt))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if msgs := strings.Join(capt.all(), "\n"); !strings.Contains(msgs, "missing") || !strings.Contains(msgs, fmt.Sprint(filepath.Base(segs[0]))) {
		t.Fatalf("a deleted segment is not reported:\n%s", msgs)
	}
}
