package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"log/syslog"
	"sync"
)

// NewStderrLogger logs text lines to w (foreground, --no-fork).
func NewStderrLogger(w io.Writer, debug bool) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level(debug)}))
}

// NewSyslogLogger logs to syslog, facility daemon, ident callcontrol: one
// line per record, at the syslog severity of its level.
func NewSyslogLogger(debug bool) (*slog.Logger, error) {
	w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "callcontrol")
	if err != nil {
		return nil, err
	}
	h := &syslogHandler{w: w, shared: &syslogShared{}}
	h.inner = slog.NewTextHandler(&h.shared.buf, &slog.HandlerOptions{
		Level: level(debug),
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{} // syslog stamps time and severity itself
			}
			return a
		},
	})
	return slog.New(h), nil
}

func level(debug bool) slog.Level {
	if debug {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

type syslogShared struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

type syslogHandler struct {
	w      *syslog.Writer
	inner  slog.Handler
	shared *syslogShared
}

func (h *syslogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *syslogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.shared.mu.Lock()
	defer h.shared.mu.Unlock()
	h.shared.buf.Reset()
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	line := string(bytes.TrimRight(h.shared.buf.Bytes(), "\n"))
	switch {
	case r.Level >= slog.LevelError:
		return h.w.Err(line)
	case r.Level >= slog.LevelWarn:
		return h.w.Warning(line)
	case r.Level >= slog.LevelInfo:
		return h.w.Info(line)
	default:
		return h.w.Debug(line)
	}
}

func (h *syslogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &syslogHandler{w: h.w, inner: h.inner.WithAttrs(attrs), shared: h.shared}
}

func (h *syslogHandler) WithGroup(name string) slog.Handler {
	return &syslogHandler{w: h.w, inner: h.inner.WithGroup(name), shared: h.shared}
}
