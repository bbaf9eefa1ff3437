package daemon

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"sync"
	"time"

	"github.com/callcontrol/callcontrol/internal/logfmt"
)

// logBufferMax bounds the bytes of log lines waiting for a slow sink.
// Logging must never delay a reply to the proxy: syslog and a piped stderr
// can both block, so lines are collected in memory and written every
// logTick by a goroutine of their own; when the buffer is full, lines are
// dropped, counted, and the count is logged once the sink keeps up again.
const (
	logBufferMax = 4 << 20
	logTick      = 5 * time.Millisecond
)

// Logger is the daemon's logger and the goroutine that writes its lines.
type Logger struct {
	*slog.Logger
	sink *asyncSink
}

// Close writes the lines still waiting and stops the writer.
func (l *Logger) Close() { l.sink.close() }

// NewStderrLogger logs text lines to w (foreground, --no-fork).
func NewStderrLogger(w io.Writer, debug bool) *Logger {
	sink := newAsyncSink(func(lines []byte) { w.Write(lines) })
	return &Logger{Logger: slog.New(logfmt.New(sink, logfmt.Options{Level: level(debug)})), sink: sink}
}

// NewSyslogLogger logs to syslog, facility daemon, ident callcontrol: one
// message per line, at the syslog severity of its level.
func NewSyslogLogger(debug bool) (*Logger, error) {
	w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "callcontrol")
	if err != nil {
		return nil, err
	}
	sink := newAsyncSink(func(lines []byte) {
		for len(lines) > 0 {
			line, rest, _ := bytes.Cut(lines, []byte{'\n'})
			lines = rest
			// The severity is the line's own "level=" field.
			msg := string(line)
			switch {
			case bytes.HasPrefix(line, []byte("level=ERROR")):
				w.Err(msg)
			case bytes.HasPrefix(line, []byte("level=WARN")):
				w.Warning(msg)
			case bytes.HasPrefix(line, []byte("level=INFO")):
				w.Info(msg)
			default:
				w.Debug(msg)
			}
		}
	})
	// syslog stamps the time itself.
	h := logfmt.New(sink, logfmt.Options{Level: level(debug), NoTime: true})
	return &Logger{Logger: slog.New(h), sink: sink}, nil
}

func level(debug bool) slog.Level {
	if debug {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// asyncSink is the io.Writer the log handler writes each formatted line
// to. A line is appended to a buffer under a mutex, the cheapest hand-off
// there is for the proxy's path; a goroutine writes the buffer out every
// logTick rather than waking for each line, so a burst costs few system
// calls and no thread wake-ups.
type asyncSink struct {
	write func(lines []byte) // whole lines, each ending in a newline

	mu      sync.Mutex
	buf     []byte
	dropped uint64

	kick chan struct{} // a line arrived in an empty buffer
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newAsyncSink(write func([]byte)) *asyncSink {
	s := &asyncSink{write: write, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// Write takes one line (the handler writes one record per call); when
// logBufferMax bytes are already waiting, the line is dropped and counted.
func (s *asyncSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	first := len(s.buf) == 0 && s.dropped == 0
	if len(s.buf)+len(p) > logBufferMax {
		s.dropped++
	} else {
		s.buf = append(s.buf, p...)
	}
	s.mu.Unlock()
	if first {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// run sleeps until a line arrives, then lets lines gather for logTick
// and writes them together: one wake-up per tick under load, none when
// the daemon is idle.
func (s *asyncSink) run() {
	defer close(s.done)
	t := time.NewTimer(logTick)
	t.Stop()
	var spare []byte
	for {
		stopping := false
		select {
		case <-s.kick:
			t.Reset(logTick)
			select {
			case <-t.C:
			case <-s.stop:
				stopping = true
			}
		case <-s.stop:
			stopping = true
		}
		s.mu.Lock()
		lines, dropped := s.buf, s.dropped
		s.buf, s.dropped = spare[:0], 0
		s.mu.Unlock()
		if len(lines) > 0 {
			s.write(lines)
		}
		if dropped > 0 {
			s.write(fmt.Appendf(nil, "level=WARN msg=\"log lines dropped: the log sink was too slow\" dropped=%d at=%s\n",
				dropped, time.Now().Format(time.RFC3339Nano)))
		}
		spare = lines
		if stopping {
			return
		}
	}
}

// close writes what is waiting and stops the writer; lines written after
// it are kept in memory and never written.
func (s *asyncSink) close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}
