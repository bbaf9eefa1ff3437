package daemon

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"sync"
	"sync/atomic"
	"time"
)

// logQueue bounds the lines waiting for a slow log sink. Logging must never
// delay a reply to the proxy: syslog and a piped stderr can both block, so
// lines go through a queue, and when it is full they are dropped, counted,
// and the count is logged once the sink keeps up again.
const (
	logQueue = 16384
	logTick  = 5 * time.Millisecond
)

// Logger is the daemon's logger and the goroutine that writes its lines.
type Logger struct {
	*slog.Logger
	sink *asyncSink
}

// Close writes the lines still queued and stops the writer.
func (l *Logger) Close() { l.sink.close() }

// NewStderrLogger logs text lines to w (foreground, --no-fork).
func NewStderrLogger(w io.Writer, debug bool) *Logger {
	bw := bufio.NewWriterSize(w, 64<<10)
	sink := newAsyncSink(func(line []byte) { bw.Write(line) }, func() { bw.Flush() })
	h := slog.NewTextHandler(sink, &slog.HandlerOptions{Level: level(debug)})
	return &Logger{Logger: slog.New(h), sink: sink}
}

// NewSyslogLogger logs to syslog, facility daemon, ident callcontrol: one
// line per record, at the syslog severity of its level.
func NewSyslogLogger(debug bool) (*Logger, error) {
	w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "callcontrol")
	if err != nil {
		return nil, err
	}
	sink := newAsyncSink(func(line []byte) {
		// The severity is the line's own "level=" field.
		msg := string(bytes.TrimRight(line, "\n"))
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
	}, func() {})
	h := slog.NewTextHandler(sink, &slog.HandlerOptions{
		Level: level(debug),
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{} // syslog stamps the time itself
			}
			return a
		},
	})
	return &Logger{Logger: slog.New(h), sink: sink}, nil
}

func level(debug bool) slog.Level {
	if debug {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// asyncSink is the io.Writer slog's text handler writes each formatted
// record to: it queues the line, and writes queued lines on its own
// goroutine, flushing whenever the queue runs empty, so a burst is written
// in few system calls.
type asyncSink struct {
	write   func([]byte)
	flush   func()
	lines   chan []byte
	dropped atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newAsyncSink(write func([]byte), flush func()) *asyncSink {
	s := &asyncSink{write: write, flush: flush, lines: make(chan []byte, logQueue),
		stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// Write queues one line (slog writes one record per call); a full queue
// drops it.
func (s *asyncSink) Write(p []byte) (int, error) {
	select {
	case s.lines <- bytes.Clone(p):
	default:
		s.dropped.Add(1)
	}
	return len(p), nil
}

// run drains the queue every logTick rather than waking for each line:
// a wake-up per line costs the proxy's path a thread wake-up each.
func (s *asyncSink) run() {
	defer close(s.done)
	t := time.NewTicker(logTick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.stop:
		}
		for n := len(s.lines); n > 0; n-- {
			s.write(<-s.lines)
		}
		if n := s.dropped.Swap(0); n > 0 {
			s.write(fmt.Appendf(nil, "level=WARN msg=\"log lines dropped: the log sink was too slow\" dropped=%d at=%s\n",
				n, time.Now().Format(time.RFC3339Nano)))
		}
		s.flush()
		select {
		case <-s.stop:
			if len(s.lines) == 0 {
				return
			}
		default:
		}
	}
}

func (s *asyncSink) close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}
