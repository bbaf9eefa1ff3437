package session

import (
	"context"
	"log/slog"
	"time"
)

// callLog adds a call's attributes to each line it logs. Unlike
// slog.Logger.With it costs nothing until a line is logged: With makes the
// text handler format the attributes at once, on every request. The
// attributes are typed (slog.Attr), which spares boxing each value in an
// interface on the proxy's path.
type callLog struct {
	l     *slog.Logger
	attrs []slog.Attr
}

func newCallLog(l *slog.Logger, callID string) callLog {
	a := make([]slog.Attr, 1, 3)
	a[0] = slog.String("callid", callID)
	return callLog{l: l, attrs: a}
}

func (c callLog) with(attrs ...slog.Attr) callLog {
	return callLog{l: c.l, attrs: append(c.attrs[:len(c.attrs):len(c.attrs)], attrs...)}
}

func (c callLog) log(level slog.Level, msg string, kv []any) {
	logLine(c.l, level, msg, c.attrs, nil, kv)
}

// info logs a line at info level with typed attributes: the lines of
// every call use it.
func (c callLog) info(msg string, attrs ...slog.Attr) {
	logLine(c.l, slog.LevelInfo, msg, c.attrs, attrs, nil)
}

// debug is info at debug level: with debug lines off (the default) it
// costs nothing, where Debug's arguments are boxed before it can tell.
func (c callLog) debug(msg string, attrs ...slog.Attr) {
	logLine(c.l, slog.LevelDebug, msg, c.attrs, attrs, nil)
}

// logLine logs one record with the attributes of all three lists. It
// builds the record itself: slog.Logger would also capture the caller's
// program counter, a stack walk per line that nothing here reads.
func logLine(l *slog.Logger, level slog.Level, msg string, attrs, more []slog.Attr, kv []any) {
	ctx := context.Background()
	h := l.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(attrs...)
	r.AddAttrs(more...)
	r.Add(kv...)
	h.Handle(ctx, r)
}

func (c callLog) Debug(msg string, kv ...any) { c.log(slog.LevelDebug, msg, kv) }
func (c callLog) Info(msg string, kv ...any)  { c.log(slog.LevelInfo, msg, kv) }
func (c callLog) Warn(msg string, kv ...any)  { c.log(slog.LevelWarn, msg, kv) }
func (c callLog) Error(msg string, kv ...any) { c.log(slog.LevelError, msg, kv) }
