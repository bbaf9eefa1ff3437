package logfmt

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// pair logs the same records through this handler and slog.TextHandler.
type pair struct {
	got, want bytes.Buffer
	fast      *slog.Logger
	text      *slog.Logger
}

func newPair(noTime bool) *pair {
	p := &pair{}
	p.fast = slog.New(New(&p.got, Options{Level: slog.LevelDebug, NoTime: noTime}))
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	if noTime {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	p.text = slog.New(slog.NewTextHandler(&p.want, opts))
	return p
}

type marshaler struct{ s string }

func (m marshaler) MarshalText() ([]byte, error) {
	if m.s == "fail" {
		return nil, errors.New("cannot")
	}
	return []byte(m.s), nil
}

type stringer struct{}

func (*stringer) String() string { panic("boom") }

type valuer struct{}

func (valuer) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("a", 1), slog.String("b", "x y"))
}

func TestSameLinesAsTextHandler(t *testing.T) {
	when := time.Date(2026, 11, 22, 21, 6, 50, 123456789, time.UTC)
	plus2 := time.FixedZone("", 2*3600)
	cases := []struct {
		name  string
		level slog.Level
		msg   string
		args  []any
		at    time.Time
	}{
		{"call limited", slog.LevelInfo, "call limited", []any{"callid", "abc@10.0.0.1", "party", "sip:alice@example.com", "to", "sip:0031650@example.com", "limit", 3600, "prepaid", false, "engine", "", "call_limit", 0}, when},
		{"quoting", slog.LevelWarn, "a message with spaces", []any{"q", `say "hi"`, "eq", "a=b", "ctl", "a\tb\n", "bs", `C:\dir`, "del", "x\x7fy", "utf8", "café", "nbsp", "a\u00a0b", "bad", "\xff\xfe", "emptyval", ""}, when},
		{"numbers", slog.LevelDebug, "n", []any{"i", -42, "u", uint64(1 << 63), "f", 1.5, "big", 1e21, "nan", 0.1 + 0.2, "d", 1500 * time.Millisecond, "b", true}, when},
		{"any", slog.LevelError, "any", []any{"err", errors.New("engine down: dial unix /x: refused"), "nil", nil, "ip", netip.MustParseAddr("10.0.0.1"), "m", marshaler{"ok"}, "mfail", marshaler{"fail"}, "bytes", []byte("a\"b"), "slice", []int{1, 2}, "panics", (*stringer)(nil), "panics2", &stringer{}}, when},
		{"times", slog.LevelInfo, "t", []any{"at", when.In(plus2), "zero", time.Time{}}, when.In(plus2)},
		{"groups", slog.LevelInfo, "g", []any{slog.Group("g", "a", 1, slog.Group("h", "b", 2)), slog.Group("empty"), slog.Group("", "inline", 3), "v", valuer{}}, when},
		{"empty attrs", slog.LevelInfo, "", []any{slog.Attr{}, "k", "v"}, when},
		{"odd key", slog.Level(2), "custom level", []any{"a key", 1, "", "nokey", "k=v", 2}, when},
		{"bad args", slog.LevelInfo, "m", []any{"dangling"}, when},
		{"no time", slog.LevelInfo, "m", nil, time.Time{}},
		{"millis rollover", slog.LevelInfo, "m", nil, time.Date(2026, 12, 31, 23, 59, 59, 999_999_999, time.UTC)},
	}
	for _, noTime := range []bool{false, true} {
		for _, c := range cases {
			p := newPair(noTime)
			for _, l := range []*slog.Logger{p.fast, p.text} {
				r := slog.NewRecord(c.at, c.level, c.msg, 0)
				r.Add(c.args...)
				l.Handler().Handle(context.Background(), r)
			}
			if p.got.String() != p.want.String() {
				t.Errorf("%s (noTime %v):\n got %q\nwant %q", c.name, noTime, p.got.String(), p.want.String())
			}
		}
	}
}

func TestWithAttrsAndGroups(t *testing.T) {
	p := newPair(false)
	steps := []func(*slog.Logger) *slog.Logger{
		func(l *slog.Logger) *slog.Logger { return l.With("engine", "10.0.0.1:9024") },
		func(l *slog.Logger) *slog.Logger { return l.WithGroup("req") },
		func(l *slog.Logger) *slog.Logger { return l.With("id", 7, "weird key", "x") },
		func(l *slog.Logger) *slog.Logger { return l.WithGroup("") },
		func(l *slog.Logger) *slog.Logger { return l.WithGroup("a b") },
	}
	fast, text := p.fast, p.text
	for i, step := range steps {
		fast, text = step(fast), step(text)
		fast.Info("line", "n", i, slog.Group("g", "x", 1))
		text.Info("line", "n", i, slog.Group("g", "x", 1))
		fast.Info("no attrs")
		text.Info("no attrs")
	}
	// Times differ between the two calls; compare what follows them.
	strip := func(s string) string {
		var out []string
		for _, line := range strings.Split(s, "\n") {
			if _, rest, ok := strings.Cut(line, " "); ok {
				out = append(out, rest)
			}
		}
		return strings.Join(out, "\n")
	}
	if g, w := strip(p.got.String()), strip(p.want.String()); g != w {
		t.Errorf("got:\n%s\nwant:\n%s", g, w)
	}
}

func TestClockAcrossSecondsAndZones(t *testing.T) {
	h := New(nil, Options{})
	base := time.Date(2026, 3, 29, 0, 59, 58, 0, time.UTC)
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		ams = time.FixedZone("CET", 3600)
	}
	for i := 0; i < 5000; i++ {
		at := base.Add(time.Duration(i) * 997 * time.Microsecond)
		for _, tm := range []time.Time{at, at.In(ams), at.Local()} {
			got := string(h.clock.appendTime(nil, tm))
			want := string(appendRFC3339Millis(nil, tm))
			if got != want {
				t.Fatalf("%v: got %s want %s", tm, got, want)
			}
		}
	}
}

func TestLevel(t *testing.T) {
	var lv slog.LevelVar
	lv.Set(slog.LevelWarn)
	h := New(&bytes.Buffer{}, Options{Level: &lv})
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelWarn) {
		t.Fatal("level not honoured")
	}
	if New(nil, Options{}).Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("default level should be info")
	}
}

func FuzzSameLinesAsTextHandler(f *testing.F) {
	f.Add("call limited", "callid", "abc@1", int64(3), "sip:alice@example.com")
	f.Add("", "", "", int64(-1), "\x00\"=\\ é\u2028")
	f.Fuzz(func(t *testing.T, msg, key, s string, n int64, v string) {
		p := newPair(false)
		at := time.Unix(0, n).UTC()
		for _, l := range []*slog.Logger{p.fast, p.text} {
			r := slog.NewRecord(at, slog.Level(n%16), msg, 0)
			r.Add(key, s, "n", n, "v", v, slog.Group(key, key, v))
			l.Handler().Handle(context.Background(), r)
		}
		if p.got.String() != p.want.String() {
			t.Fatalf("\n got %q\nwant %q", p.got.String(), p.want.String())
		}
	})
}

func BenchmarkCallLine(b *testing.B) {
	for _, h := range []struct {
		name string
		h    slog.Handler
	}{
		{"logfmt", New(discard{}, Options{})},
		{"slog.TextHandler", slog.NewTextHandler(discard{}, nil)},
	} {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := slog.NewRecord(time.Now(), slog.LevelInfo, "call limited", 0)
				r.Add("callid", "8f3a1c2e-4b5d@10.0.0.1", "party", "sip:alice@example.com", "to", "sip:0031650222333@example.com",
					"limit", 3600, "prepaid", false, "engine", "", "call_limit", 0)
				h.h.Handle(context.Background(), r)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
