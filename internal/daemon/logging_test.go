package daemon

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAsyncSinkKeepsOrderAndFlushesOnClose(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	s := newAsyncSink(func(b []byte) { mu.Lock(); out.Write(b); mu.Unlock() })
	var want strings.Builder
	for i := range 10000 {
		line := fmt.Sprintf("level=INFO msg=line n=%d\n", i)
		s.Write([]byte(line))
		want.WriteString(line)
	}
	s.close()
	if out.String() != want.String() {
		t.Fatalf("lines lost or reordered: got %d bytes, want %d", out.Len(), want.Len())
	}
}

func TestAsyncSinkDropsWhenTheSinkIsStuckAndSaysSo(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var out bytes.Buffer
	first := true
	s := newAsyncSink(func(b []byte) {
		if first { // the sink hangs on its first write, like a full pipe
			first = false
			<-release
		}
		mu.Lock()
		out.Write(b)
		mu.Unlock()
	})
	s.Write([]byte("level=INFO msg=first\n"))
	time.Sleep(20 * logTick) // the writer takes "first" and hangs
	line := []byte("level=INFO msg=" + strings.Repeat("x", 1000) + "\n")
	n := 2 * logBufferMax / len(line)
	start := time.Now()
	for range n {
		s.Write(line)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("writes blocked on a stuck sink for %v", d)
	}
	close(release)
	s.close()
	got := out.String()
	kept := strings.Count(got, "msg=xxx")
	if kept == 0 || kept >= n {
		t.Fatalf("kept %d of %d lines; want some dropped", kept, n)
	}
	wantWarn := fmt.Sprintf("dropped=%d ", n-kept)
	if !strings.Contains(got, "level=WARN msg=\"log lines dropped: the log sink was too slow\" "+wantWarn) {
		t.Fatalf("no warning counting %d dropped lines in the output's tail: %q", n-kept, got[max(0, len(got)-300):])
	}
}
