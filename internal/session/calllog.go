package session

import (
	"context"
	"log/slog"
	"time"
)

// callLog adds a call's attributes to each line it logs. Unlike
// slog.Logger.With it costs nothing until a line is logged: With makes the
// text handler format the attributes at once, on every request.
type callLog struct {
	l     *slog.Logger
	attrs []any
}

func newCallLog(l *slog.Logger, callID string) callLog {
	a := make([]any, 2, 8)
	a[0], a[1] = "callid", callID
	return callLog{l: l, attrs: a}
}

func (c callLog) with(kv ...any) callLog {
	return callLog{l: c.l, attrs: append(c.attrs[:len(c.attrs):len(c.attrs)], kv...)}
}

func (c callLog) log(level slog.Level, msg string, kv []any) {
	logLine(c.l, level, msg, c.attrs, kv)
}

// logLine logs one record with the attributes of both lists. It builds
// the record itself: slog.Logger would also capture the caller's program
// counter, a stack walk per line that nothing here reads.
func logLine(l *slog.Logger, level slog.Level, msg string, attrs, kv []any) {
	ctx := context.Background()
	h := l.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.Add(attrs...)
	r.Add(kv...)
	h.Handle(ctx, r)
}

func (c callLog) Debug(msg string, kv ...any) { c.log(slog.LevelDebug, msg, kv) }
func (c callLog) Info(msg string, kv ...any)  { c.log(slog.LevelInfo, msg, kv) }
func (c callLog) Warn(msg string, kv ...any)  { c.log(slog.LevelWarn, msg, kv) }
func (c callLog) Error(msg string, kv ...any) { c.log(slog.LevelError, msg, kv) }
