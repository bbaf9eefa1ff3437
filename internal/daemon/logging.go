package daemon

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/callcontrol/callcontrol/internal/logfmt"
)

// logBufferMax bounds the bytes of log lines waiting for a slow sink.
// Logging must never delay a reply to the proxy: syslog and a piped stderr
// can both block, so lines are collected in memory and written every
// logTick by a goroutine of their own; when the buffer is full, lines are
// dropped, counted, and the count is logged once the sink keeps up again.
// A line into an idle sink waits logTick; while lines keep coming they are
// written every logTickBusy: writing every 5 ms under load cost one proxy
// connection about a tenth of its calls per second on this project's VMs
// (BENCHMARKS.md, issue 12), and no operator reads a line a tenth of a
// second old as late.
const (
	logBufferMax = 4 << 20
	logTick      = 5 * time.Millisecond
	logTickBusy  = 100 * time.Millisecond
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

// NewJournalLogger logs to w, systemd's journal stream on stderr: each
// line starts with its syslog priority ("<3>" for errors), which the
// journal files it under (journalctl -p err), and carries no time (the
// journal stamps it).
func NewJournalLogger(w io.Writer, debug bool) *Logger {
	sink := newAsyncSink(func(lines []byte) {
		var out []byte
		eachLine(lines, func(line []byte) {
			out = fmt.Appendf(out, "<%d>", severity(line))
			out = append(append(out, line...), '\n')
		})
		w.Write(out)
	})
	h := logfmt.New(sink, logfmt.Options{Level: level(debug), NoTime: true})
	return &Logger{Logger: slog.New(h), sink: sink}
}

// JournalStream reports whether f is the journal stream systemd connected
// (JOURNAL_STREAM names its device and inode, sd_journal_stream_fd(3)); a
// stderr redirected elsewhere by the operator is not.
func JournalStream(f *os.File, journalStream string) bool {
	if journalStream == "" {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return journalStream == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// syslogRetry is how often a daemon that lost syslog tries it again.
const syslogRetry = 10 * time.Second

// NewSyslogLogger logs to syslog, facility daemon, ident callcontrol: one
// message per line, at the syslog severity of its level. Logging never
// stops the daemon: when syslog cannot be reached (no /dev/log in a
// container, syslogd restarting), lines go to fallback, the daemon says
// once that syslog was unavailable, and it goes back to syslog when it
// returns, saying that too.
func NewSyslogLogger(debug bool, fallback io.Writer) *Logger {
	dial := func() (*syslog.Writer, error) { return syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "callcontrol") }
	return newSyslogLogger(debug, fallback, dial, syslogRetry, time.Now)
}

func newSyslogLogger(debug bool, fallback io.Writer, dial func() (*syslog.Writer, error), retry time.Duration, now func() time.Time) *Logger {
	s := &syslogSink{dial: dial, fallback: fallback, retry: retry, now: now}
	s.connect()
	if s.w != nil {
		// Syslog works: let go of the stderr we were started with, or a
		// shell that ran the init script over ssh would wait for it to
		// close. Should syslog go away later, lines are lost until it is
		// back (docs/design.md, known limits).
		if c, ok := fallback.(io.Closer); ok {
			c.Close()
		}
		s.fallback = io.Discard
	}
	sink := newAsyncSink(s.write)
	// syslog stamps the time itself; the fallback lines get one added.
	h := logfmt.New(sink, logfmt.Options{Level: level(debug), NoTime: true})
	return &Logger{Logger: slog.New(h), sink: sink}
}

// syslogSink writes lines to syslog, or to fallback while syslog is out of
// reach. Only the asyncSink's goroutine calls write, so it needs no lock.
type syslogSink struct {
	dial     func() (*syslog.Writer, error)
	fallback io.Writer
	retry    time.Duration
	now      func() time.Time

	w         *syslog.Writer // nil while syslog is unavailable
	lastTry   time.Time
	lostErr   error // why syslog was lost
	announced bool  // the outage was said on fallback (once per outage)
}

func (s *syslogSink) connect() {
	s.lastTry = s.now()
	w, err := s.dial()
	if err != nil {
		s.lostErr = err
		return
	}
	s.w = w
}

func (s *syslogSink) write(lines []byte) {
	if s.w == nil && s.now().Sub(s.lastTry) >= s.retry {
		if s.connect(); s.w != nil && s.announced {
			s.w.Warning(fmt.Sprintf("level=WARN msg=\"syslog is available again; lines logged while it was not went to stderr\" err=%q", s.lostErr.Error()))
		}
		if s.w != nil {
			s.lostErr, s.announced = nil, false
		}
	}
	eachLine(lines, func(line []byte) {
		if s.w != nil {
			err := s.toSyslog(line)
			if err == nil {
				return
			}
			s.w.Close()
			s.w, s.lostErr, s.lastTry = nil, err, s.now()
		}
		if !s.announced {
			s.announced = true
			s.toFallback(fmt.Appendf(nil, "level=ERROR msg=\"syslog unavailable: logging to stderr, retrying every %s\" err=%q", s.retry, s.lostErr.Error()))
		}
		s.toFallback(line)
	})
}

func (s *syslogSink) toSyslog(line []byte) error {
	msg := string(line)
	switch severity(line) {
	case syslog.LOG_ERR:
		return s.w.Err(msg)
	case syslog.LOG_WARNING:
		return s.w.Warning(msg)
	case syslog.LOG_INFO:
		return s.w.Info(msg)
	}
	return s.w.Debug(msg)
}

func (s *syslogSink) toFallback(line []byte) {
	s.fallback.Write(append(append(s.now().AppendFormat(nil, "2006-01-02T15:04:05.000Z07:00 callcontrol: "), line...), '\n'))
}

// eachLine calls f with each line of lines, without its newline.
func eachLine(lines []byte, f func(line []byte)) {
	for len(lines) > 0 {
		line, rest, _ := bytes.Cut(lines, []byte{'\n'})
		lines = rest
		f(line)
	}
}

// severity is a line's syslog severity, from its own "level=" field.
func severity(line []byte) syslog.Priority {
	switch {
	case bytes.HasPrefix(line, []byte("level=ERROR")):
		return syslog.LOG_ERR
	case bytes.HasPrefix(line, []byte("level=WARN")):
		return syslog.LOG_WARNING
	case bytes.HasPrefix(line, []byte("level=INFO")):
		return syslog.LOG_INFO
	}
	return syslog.LOG_DEBUG
}

func level(debug bool) slog.Level {
	if debug {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// asyncSink is the io.Writer the log handler writes each formatted line
// to. A line is appended to a buffer under a mutex, the cheapest hand-off
// there is for the proxy's path; a goroutine writes the buffer out rather
// than waking for each line. Under load it stays awake, one timer per
// logTickBusy and nothing else: a line only wakes it when it slept, after
// a tick that found nothing (on this project's VMs every wake-up of
// another thread costs the proxy's replies, BENCHMARKS.md).
type asyncSink struct {
	write func(lines []byte) // whole lines, each ending in a newline

	mu      sync.Mutex
	buf     []byte
	dropped uint64
	flushes []chan struct{} // closed once the lines before them are written
	awake   bool            // the writer looks again within logTickBusy

	kick chan struct{} // a line arrived while the writer slept
	now  chan struct{} // flush: write without waiting for the tick
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newAsyncSink(write func([]byte)) *asyncSink {
	s := &asyncSink{write: write, kick: make(chan struct{}, 1), now: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

// Write takes one line (the handler writes one record per call); when
// logBufferMax bytes are already waiting, the line is dropped and counted.
func (s *asyncSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	wake := !s.awake
	s.awake = true
	if len(s.buf)+len(p) > logBufferMax {
		s.dropped++
	} else {
		s.buf = append(s.buf, p...)
	}
	s.mu.Unlock()
	if wake {
		s.wake(s.kick)
	}
	return len(p), nil
}

func (s *asyncSink) wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run sleeps until a line arrives, writes what gathered logTick later,
// then every logTickBusy until a tick finds nothing: one wake-up per tick
// under load, none when the daemon is idle.
func (s *asyncSink) run() {
	defer close(s.done)
	t := time.NewTimer(logTick)
	t.Stop()
	var spare []byte
	for {
		select {
		case <-s.kick:
		case <-s.stop: // the awake loop below writes the rest
		}
		tick := logTick
		for idle := false; !idle; tick = logTickBusy {
			stopping := false
			t.Reset(tick)
			select {
			case <-t.C:
			case <-s.now:
				t.Stop()
			case <-s.stop:
				t.Stop()
				stopping = true
			}
			s.mu.Lock()
			lines, dropped, flushes := s.buf, s.dropped, s.flushes
			s.buf, s.dropped, s.flushes = spare[:0], 0, nil
			idle = len(lines) == 0 && dropped == 0 && len(flushes) == 0
			if idle {
				s.awake = false // the next line wakes the writer
			}
			s.mu.Unlock()
			if len(lines) > 0 {
				s.write(lines)
			}
			if dropped > 0 {
				s.write(fmt.Appendf(nil, "level=WARN msg=\"log lines dropped: the log sink was too slow\" dropped=%d at=%s\n",
					dropped, time.Now().Format(time.RFC3339Nano)))
			}
			for _, f := range flushes {
				close(f)
			}
			spare = lines
			if stopping {
				return
			}
		}
	}
}

// flush returns once the lines written before it are out.
func (s *asyncSink) flush() {
	done := make(chan struct{})
	s.mu.Lock()
	s.flushes = append(s.flushes, done)
	wake := !s.awake
	s.awake = true
	s.mu.Unlock()
	if wake {
		s.wake(s.kick)
	}
	s.wake(s.now)
	<-done
}

// close writes what is waiting and stops the writer; lines written after
// it are kept in memory and never written.
func (s *asyncSink) close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}
