package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A snapshot of several megabytes is written a chunk at a time, its header
// last: every record comes back, and the header counts them all.
func TestSnapshotOfManyChunksRestoresEveryRecord(t *testing.T) {
	dir := t.TempDir()
	l, _ := mustOpen(t, dir, Options{})
	table := map[string]string{}
	for i := range 3 * snapChunk / 1000 {
		table[fmt.Sprint("k", i)] = strings.Repeat(string(rune('a'+i%26)), 1000)
	}
	if err := l.Compact(func(put func(string, []byte)) {
		for k, v := range table {
			put(k, []byte(v))
		}
	}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	b, err := os.ReadFile(filepath.Join(dir, snapName))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 3*snapChunk {
		t.Fatalf("snapshot of %d bytes, want more than 3 chunks", len(b))
	}
	if n := binary.LittleEndian.Uint64(b[16:]); n != uint64(len(table)) {
		t.Fatalf("header counts %d records, want %d", n, len(table))
	}
	l, live := mustOpen(t, dir, Options{})
	defer l.Close()
	equalMaps(t, live, table)
}

// A snapshot whose write fails part way (here the file size limit: a full
// disk does the same) leaves the snapshot and the segments as they were,
// and no temporary file: the next open restores everything.
func TestSnapshotWriteFailingMidwayKeepsTheOldState(t *testing.T) {
	dir := t.TempDir()
	l, _ := mustOpen(t, dir, Options{})
	table := map[string]string{}
	put := func(k, v string) {
		table[k] = v
		mustWait(t, l.Apply(Put(k, []byte(v))))
	}
	put("before", "1")
	if err := l.Compact(func(p func(string, []byte)) { p("before", []byte("1")) }); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		put(fmt.Sprint("k", i), strings.Repeat("v", 100))
	}

	signal.Ignore(syscall.SIGXFSZ)
	defer signal.Reset(syscall.SIGXFSZ)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	limit := old
	limit.Cur = snapChunk + snapChunk/2
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 1000)
	err := l.Compact(func(p func(string, []byte)) {
		for k, v := range table {
			p(k, []byte(v))
		}
		for i := range 3 * snapChunk / 1000 { // records only this snapshot would hold
			p(fmt.Sprint("big", i), []byte(big))
		}
	})
	if rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil || !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Compact past the size limit: %v, want EFBIG", err)
	}
	if _, err := os.Stat(filepath.Join(dir, snapTmpName)); !os.IsNotExist(err) {
		t.Fatalf("temporary snapshot left: %v", err)
	}
	l.Close()
	l, live := mustOpen(t, dir, Options{})
	defer l.Close()
	equalMaps(t, live, table)
}
