package store

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/store/storetest"
)

// into is an apply that keeps the last value of each key in live, as Open
// does.
func into(live map[string][]byte) func(Replayed) {
	return func(r Replayed) {
		if r.Delete {
			delete(live, string(r.Key))
		} else {
			live[string(r.Key)] = bytes.Clone(r.Value)
		}
	}
}

// OpenReplay hands over the snapshot's records, then the log's ops in the
// order they were applied (overrides and removals included), so an owner
// that keeps the last op of each key ends with what Open returns: here a
// snapshot of several chunks, read a chunk at a time, and a log after it.
func TestOpenReplayHandsOverSnapshotThenLogInOrder(t *testing.T) {
	dir := t.TempDir()
	l, _ := mustOpen(t, dir, Options{})
	table := map[string]string{}
	for i := range 3 * snapChunk / 500 {
		table[fmt.Sprint("k", i)] = strings.Repeat(string(rune('a'+i%26)), 500)
	}
	// One record bigger than a chunk: the window grows for it.
	table["big"] = strings.Repeat("B", snapChunk+snapChunk/2)
	if err := l.Compact(func(put func(string, []byte)) {
		for k, v := range table {
			put(k, []byte(v))
		}
	}); err != nil {
		t.Fatal(err)
	}
	// After the snapshot: an override, a removal, a new key removed and put
	// again, and a batch of several ops.
	logOps := [][]Op{
		{Put("k1", []byte("changed"))},
		{Delete("k2")},
		{Put("new", []byte("1"))},
		{Delete("new")},
		{Put("new", []byte("2")), Put("k3", []byte("three")), Delete("big")},
	}
	for _, batch := range logOps {
		mustWait(t, l.Apply(batch...))
	}
	l.Close()

	var got []Replayed
	l, err := OpenReplay(dir, Options{}, quiet(), func(r Replayed) {
		got = append(got, Replayed{Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value), Delete: r.Delete})
	})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if len(got) < len(table) {
		t.Fatalf("%d ops handed over, want the snapshot's %d records first", len(got), len(table))
	}
	fromSnap := map[string]string{}
	for _, r := range got[:len(table)] {
		if r.Delete {
			t.Fatalf("a removal among the snapshot's records: %s", r.Key)
		}
		fromSnap[string(r.Key)] = string(r.Value)
	}
	if !maps.Equal(fromSnap, table) {
		t.Fatalf("the first %d ops are not the snapshot's records", len(table))
	}
	var flat []Op
	for _, batch := range logOps {
		flat = append(flat, batch...)
	}
	rest := got[len(table):]
	if len(rest) != len(flat) {
		t.Fatalf("%d ops after the snapshot, want the log's %d", len(rest), len(flat))
	}
	for i, op := range flat {
		if string(rest[i].Key) != op.Key || rest[i].Delete != op.Delete || string(rest[i].Value) != string(op.Value) {
			t.Fatalf("op %d after the snapshot: %s %q delete=%v, want %+v", i, rest[i].Key, rest[i].Value, rest[i].Delete, op)
		}
	}

	want := maps.Clone(table)
	want["k1"], want["k3"], want["new"] = "changed", "three", "2"
	delete(want, "k2")
	delete(want, "big")
	l, live := mustOpen(t, dir, Options{})
	defer l.Close()
	equalMaps(t, live, want)
}

// Damage across the boundary of the chunks the snapshot is read in loses
// only the records it hits: a flipped byte on either side of each
// boundary, a run of garbage across one, a torn end.
func TestSnapshotDamageAcrossChunksLosesOnlyItsRecords(t *testing.T) {
	src := t.TempDir()
	l, _ := mustOpen(t, src, smallRing)
	table := map[string]string{}
	for i := range 3 * snapChunk / 200 {
		table[fmt.Sprint("k", i)] = strings.Repeat(string(rune('a'+i%26)), 200)
	}
	if err := l.Compact(func(put func(string, []byte)) {
		for k, v := range table {
			put(k, []byte(v))
		}
	}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	snap, err := os.ReadFile(filepath.Join(src, snapName))
	if err != nil {
		t.Fatal(err)
	}
	type damage struct {
		name string
		do   func([]byte) []byte
	}
	var cases []damage
	for _, at := range []int{snapChunk - 1, snapChunk, 2*snapChunk - 3, 2 * snapChunk} {
		cases = append(cases, damage{fmt.Sprint("flip@", at), func(b []byte) []byte { b[at] ^= 0x40; return b }})
	}
	cases = append(cases,
		damage{"garbage across a chunk", func(b []byte) []byte {
			for i := snapChunk - 700; i < snapChunk+900; i++ {
				b[i] = byte(i * 7)
			}
			return b
		}},
		damage{"torn end", func(b []byte) []byte { return b[:len(b)-37] }},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := storetest.CopyDir(t, src)
			b := c.do(bytes.Clone(snap))
			if err := os.WriteFile(filepath.Join(dir, snapName), b, 0o600); err != nil {
				t.Fatal(err)
			}
			// What the replay of the file held whole (the way it was read
			// before) keeps: the same records must come back.
			want := map[string][]byte{}
			refReplaySnapshot(b[snapHeader:], want)
			if len(want) == len(table) || len(want) < len(table)-20 {
				t.Fatalf("the damage should lose a few records: %d of %d kept", len(want), len(table))
			}
			capt := newCapture()
			l, live, err := Open(dir, smallRing, slog.New(capt))
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			if !maps.EqualFunc(live, want, bytes.Equal) {
				t.Fatalf("restored %d records, the whole-file replay %d", len(live), len(want))
			}
			for k, v := range live {
				if table[k] != string(v) {
					t.Fatalf("record %s = %q, want %q", k, v, table[k])
				}
			}
			msgs := strings.Join(capt.all(), "\n")
			if !strings.Contains(msgs, fmt.Sprintf("lost_records=%d", len(table)-len(live))) {
				t.Fatalf("loss not logged with its count (%d):\n%s", len(table)-len(live), msgs)
			}
		})
	}
}

// FuzzSnapshotReplay: the snapshot read through a window of a few bytes
// restores what the replay of the whole file in memory (the way it was
// read before) restored, skips the same ranges, and counts the records
// it handed over, for any bytes.
func FuzzSnapshotReplay(f *testing.F) {
	var good []byte
	for i := range 6 {
		var s int
		good, s = beginFrame(good)
		good = appendOp(good, Put(fmt.Sprint("key", i), bytes.Repeat([]byte{byte(i)}, 3+5*i)))
		good = endFrame(good, s)
	}
	f.Add(good, uint8(7))
	f.Add(good[:len(good)-3], uint8(16))
	flipped := bytes.Clone(good)
	flipped[20] ^= 1
	f.Add(flipped, uint8(1))
	f.Add(append(bytes.Clone(good[:30]), good...), uint8(5))
	f.Add([]byte{}, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		want := map[string][]byte{}
		wantPuts, wantSkipped := refReplaySnapshot(data, want)

		name := filepath.Join(t.TempDir(), "snap")
		if err := os.WriteFile(name, append(make([]byte, snapHeader), data...), 0o600); err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		w := &window{f: fh, size: int64(snapHeader + len(data)), chunk: 1 + int(chunk)%64}
		got := map[string][]byte{}
		puts, skipped, err := replaySnapshot(w, snapHeader, into(got))
		if err != nil {
			t.Fatal(err)
		}
		if !maps.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("restored %v, the whole-file replay %v", got, want)
		}
		if puts != uint64(wantPuts) {
			t.Fatalf("counted %d records, the whole-file replay applied %d ops", puts, wantPuts)
		}
		if len(skipped) != len(wantSkipped) {
			t.Fatalf("skipped %v, the whole-file replay %v", skipped, wantSkipped)
		}
		for i := range skipped {
			if skipped[i][0] != int64(snapHeader+wantSkipped[i][0]) || skipped[i][1] != int64(snapHeader+wantSkipped[i][1]) {
				t.Fatalf("skipped %v, the whole-file replay %v (+%d)", skipped, wantSkipped, snapHeader)
			}
		}
	})
}

// refReplaySnapshot is the snapshot's replay as it was when the file was
// read whole (before the window): the reference the streamed replay is
// held to. It returns the ops applied and the ranges skipped.
func refReplaySnapshot(b []byte, live map[string][]byte) (ops int, skipped [][2]int) {
	off := 0
	for off < len(b) {
		for off < len(b) {
			payload, size, err := readFrame(b[off:])
			if err != nil {
				break
			}
			parsed, err := decodeOps(nil, payload)
			if err != nil {
				break
			}
			for _, op := range parsed {
				into(live)(Replayed{Key: op.key, Value: op.value, Delete: op.kind == opDelete})
				ops++
			}
			off += size
		}
		if off >= len(b) {
			break
		}
		next := refResync(b, off)
		skipped = append(skipped, [2]int{off, next})
		off = next
	}
	return ops, skipped
}

func refResync(b []byte, off int) int {
	if len(b)-off >= frameHeader {
		if n := int(uint32(b[off]) | uint32(b[off+1])<<8 | uint32(b[off+2])<<16 | uint32(b[off+3])<<24); n > 0 && n <= maxFrame {
			if next := off + frameHeader + n; next < len(b) && refGoodFrame(b[next:]) {
				return next
			}
		}
	}
	for p := off + 1; p+frameHeader <= len(b); p++ {
		if refGoodFrame(b[p:]) {
			return p
		}
	}
	return len(b)
}

func refGoodFrame(b []byte) bool {
	if len(b) < frameHeader {
		return false
	}
	n := uint64(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
	if n == 0 || n > uint64(len(b)-frameHeader) || n > maxFrame {
		return false
	}
	payload, _, err := readFrame(b)
	if err != nil {
		return false
	}
	_, err = decodeOps(nil, payload)
	return err == nil
}
