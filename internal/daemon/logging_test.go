package daemon

import (
	"bytes"
	"fmt"
	"log/syslog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
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
	release, hung := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var out bytes.Buffer
	first := true
	s := newAsyncSink(func(b []byte) {
		if first { // the sink hangs on its first write, like a full pipe
			first = false
			close(hung)
			<-release
		}
		mu.Lock()
		out.Write(b)
		mu.Unlock()
	})
	s.Write([]byte("level=INFO msg=first\n"))
	<-hung // the writer took "first" and hangs
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

// TestSyslogUnavailableThenBack: with no syslog socket the logger writes
// to the fallback and says once why; when syslog appears it goes back to
// it at the next retry and says that it did. The clock is the test's.
func TestSyslogUnavailableThenBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	dial := func() (*syslog.Writer, error) {
		return syslog.Dial("unixgram", path, syslog.LOG_DAEMON|syslog.LOG_INFO, "callcontrol")
	}
	var mu sync.Mutex
	clock := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	var fallback lockedBuffer
	log := newSyslogLogger(false, &fallback, dial, time.Minute, now)
	defer log.Close()

	log.Info("first", "callid", "a@1")
	log.Error("second", "err", "boom")
	log.sink.flush()
	got := fallback.String()
	if n := strings.Count(got, "syslog unavailable"); n != 1 {
		t.Fatalf("said %d times that syslog was unavailable:\n%s", n, got)
	}
	for _, want := range []string{"level=INFO msg=first callid=a@1", "level=ERROR msg=second err=boom", "2026-11-30T09:00:00.000Z callcontrol: "} {
		if !strings.Contains(got, want) {
			t.Errorf("fallback lacks %q:\n%s", want, got)
		}
	}

	// syslog comes back; before the retry time nothing changes.
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	log.Info("third")
	log.sink.flush()
	if !strings.Contains(fallback.String(), "msg=third") {
		t.Fatal("a line before the retry time did not go to the fallback")
	}
	mu.Lock()
	clock = clock.Add(time.Minute)
	mu.Unlock()
	log.Warn("fourth", "callid", "b@2")
	log.sink.flush()
	var msgs []string
	buf := make([]byte, 4096)
	for len(msgs) < 2 {
		ln.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("syslog got %q, then: %v", msgs, err)
		}
		msgs = append(msgs, string(buf[:n]))
	}
	if !strings.Contains(msgs[0], "syslog is available again") || !strings.Contains(msgs[1], "level=WARN msg=fourth callid=b@2") {
		t.Fatalf("syslog got %q", msgs)
	}
	if strings.Contains(fallback.String(), "fourth") {
		t.Fatal("a line went to the fallback after syslog came back")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestJournalLoggerPrefixesPriorities(t *testing.T) {
	var out lockedBuffer
	log := NewJournalLogger(&out, true)
	log.Error("e", "err", "x")
	log.Warn("w")
	log.Info("i")
	log.Debug("d")
	log.Close()
	want := "<3>level=ERROR msg=e err=x\n<4>level=WARN msg=w\n<6>level=INFO msg=i\n<7>level=DEBUG msg=d\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

type closeRecorder struct {
	lockedBuffer
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// TestSyslogAtStartLetsGoOfStderr: with syslog there, the stderr the daemon
// was started with is closed (an ssh session would wait on it) and unused.
func TestSyslogAtStartLetsGoOfStderr(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dial := func() (*syslog.Writer, error) {
		return syslog.Dial("unixgram", path, syslog.LOG_DAEMON|syslog.LOG_INFO, "callcontrol")
	}
	var stderr closeRecorder
	log := newSyslogLogger(false, &stderr, dial, time.Minute, time.Now)
	log.Info("hello")
	log.Close()
	if !stderr.closed || stderr.String() != "" {
		t.Fatalf("stderr closed %v, written %q", stderr.closed, stderr.String())
	}
	buf := make([]byte, 4096)
	ln.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := ln.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "msg=hello") {
		t.Fatalf("syslog got %q, %v", buf[:n], err)
	}
}

func TestJournalStream(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if !JournalStream(f, fmt.Sprintf("%d:%d", st.Dev, st.Ino)) {
		t.Error("the stream JOURNAL_STREAM names is not recognised")
	}
	if JournalStream(f, fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)) || JournalStream(f, "") {
		t.Error("another stream, or none, taken for the journal")
	}
}

// TestSinkStaysAwakeUnderLoad: a line into an idle sink is written
// logTick later; under a steady stream of lines the writer then writes
// once per logTickBusy and no line has to wake it (every wake-up of
// another thread costs the proxy's replies); a tick that finds nothing
// puts it to sleep, where no timer runs; flush does not wait for the tick.
func TestSinkStaysAwakeUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var writes []time.Duration
		start := time.Now()
		s := newAsyncSink(func([]byte) {
			mu.Lock()
			writes = append(writes, time.Since(start))
			mu.Unlock()
		})
		defer s.close()
		written := func() []time.Duration {
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			return append([]time.Duration(nil), writes...)
		}
		awake := func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.awake
		}

		const ticks = 10
		for i := range int(logTick/time.Millisecond) + ticks*int(logTickBusy/time.Millisecond) {
			if i > 0 && !awake() {
				t.Fatalf("line %d at %v had to wake the writer", i, time.Since(start))
			}
			s.Write([]byte("level=INFO msg=line\n"))
			time.Sleep(time.Millisecond)
		}
		got := written()
		if len(got) != 1+ticks {
			t.Fatalf("%d writes, want one after logTick, then one per logTickBusy: %v", len(got), got)
		}
		for i, at := range got {
			if want := logTick + time.Duration(i)*logTickBusy; at != want {
				t.Fatalf("write %d at %v, want %v: %v", i, at, want, got)
			}
		}

		time.Sleep(2 * logTickBusy) // one tick writes the rest, the next finds nothing
		if awake() {
			t.Fatal("the writer stays awake with nothing to write")
		}
		n := len(written())
		time.Sleep(time.Hour)
		if len(written()) != n {
			t.Fatal("the writer wrote while idle")
		}

		at := time.Since(start)
		s.Write([]byte("level=INFO msg=after\n"))
		time.Sleep(logTick)
		if got := written(); len(got) != n+1 || got[n] != at+logTick {
			t.Fatalf("a line into an idle sink: writes %v, want one more at %v", got[n:], at+logTick)
		}

		s.Write([]byte("level=INFO msg=flushed\n"))
		at = time.Since(start)
		s.flush()
		if got := written(); got[len(got)-1] != at {
			t.Fatalf("flush waited for the tick: written at %v, asked at %v", got[len(got)-1], at)
		}
	})
}
