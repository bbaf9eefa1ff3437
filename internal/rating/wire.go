package rating

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

var (
	// ErrInvalid marks a request whose values cannot be sent (they would
	// break the engine's framing). It also matches ErrNotSent.
	ErrInvalid = errors.New("rating: invalid request")
	// ErrEngine marks an "Error: ..." answer: the engine could not answer.
	ErrEngine = errors.New("rating: engine error")
	// ErrReplyTooLarge: the peer sent more than Options.MaxReply bytes
	// without ending its reply; the connection is dropped.
	ErrReplyTooLarge = errors.New("rating: reply too large")
)

const defaultApplication = "audio"

// formatMaxSessionTime renders one request line, ending in "\n".
func formatMaxSessionTime(r Request) (string, error) {
	line, err := formatCommon("MaxSessionTime", r.CallID, r.From, r.To, r.Gateway, r.Application, r.Duration)
	if err != nil {
		return "", err
	}
	if r.Connected {
		// The engine ignores the key; it documents the re-ask in its log.
		line += " State=Connected"
	}
	return line + "\n", nil
}

// formatDebit renders one DebitBalance request line, ending in "\n".
func formatDebit(d Debit) (string, error) {
	line, err := formatCommon("DebitBalance", d.CallID, d.From, d.To, d.Gateway, d.Application, d.Duration)
	if err != nil {
		return "", err
	}
	if d.Force {
		line += " Force=1"
	}
	return line + "\n", nil
}

func formatCommon(cmd, callID, from, to, gateway, app string, duration int) (string, error) {
	if app == "" {
		app = defaultApplication
	}
	for _, f := range []struct {
		name, value string
		required    bool
	}{
		{"CallId", callID, true},
		{"From", from, true},
		{"To", to, true},
		{"Gateway", gateway, false},
		{"Application", app, true},
	} {
		if f.required && f.value == "" {
			return "", fmt.Errorf("%w: %w: empty %s", ErrInvalid, ErrNotSent, f.name)
		}
		if !safeValue(f.value) {
			return "", fmt.Errorf("%w: %w: %s %q contains white space, '=' or a control character", ErrInvalid, ErrNotSent, f.name, f.value)
		}
	}
	if duration < 0 {
		return "", fmt.Errorf("%w: %w: negative Duration %d", ErrInvalid, ErrNotSent, duration)
	}
	var b strings.Builder
	b.Grow(64 + len(callID) + len(from) + len(to) + len(gateway) + len(app))
	b.WriteString(cmd)
	b.WriteString(" CallId=")
	b.WriteString(callID)
	b.WriteString(" From=")
	b.WriteString(from)
	b.WriteString(" To=")
	b.WriteString(to)
	b.WriteString(" Gateway=")
	b.WriteString(gateway)
	b.WriteString(" Duration=")
	b.WriteString(strconv.Itoa(duration))
	b.WriteString(" Application=")
	b.WriteString(app)
	return b.String(), nil
}

// safeValue reports whether v can travel as one key=value token: the engine
// splits on white space and '=', and control bytes have no business there.
func safeValue(v string) bool {
	for _, r := range v {
		switch {
		case r <= ' ', r == 0x7f, r == '=':
			return false
		case r >= 0x80 && isUnicodeSpace(r):
			return false
		}
	}
	return true
}

func isUnicodeSpace(r rune) bool {
	return strings.ContainsRune("\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000", r)
}

// readReply reads one reply: lines up to the first empty line. Stray
// newlines before it (left over from a previous "Failed\n\n\n") are
// skipped, and "\r\n" is accepted. The lines come back joined by "\n".
func readReply(r *bufio.Reader, max int) (string, error) {
	var (
		lines []string
		cur   []byte // a line longer than the reader's buffer
		total int
	)
	for {
		frag, err := r.ReadSlice('\n')
		total += len(frag)
		if total > max {
			return "", ErrReplyTooLarge
		}
		if err == bufio.ErrBufferFull {
			cur = append(cur, frag...)
			continue
		}
		if err != nil {
			if err == io.EOF && (len(lines) > 0 || len(cur) > 0 || len(frag) > 0) {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		var line string
		if cur != nil {
			line = string(append(cur, frag...))
			cur = nil
		} else {
			line = string(frag)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if len(lines) == 0 {
				continue // stray newline between replies
			}
			return strings.Join(lines, "\n"), nil
		}
		lines = append(lines, line)
	}
}

// replyLines splits a reply into trimmed, non-empty lines.
func replyLines(reply string) []string {
	raw := strings.Split(reply, "\n")
	out := raw[:0]
	for _, l := range raw {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func engineError(first string) error {
	if len(first) >= 5 && strings.EqualFold(first[:5], "error") {
		return &engineAnswer{text: truncate(first)}
	}
	return nil
}

// engineAnswer is an "Error: ..." answer; it matches ErrEngine and keeps
// the engine's words for the log.
type engineAnswer struct{ text string }

func (e *engineAnswer) Error() string        { return ErrEngine.Error() + ": " + e.text }
func (e *engineAnswer) Is(target error) bool { return target == ErrEngine }

// maxSeconds bounds numbers from the engine so callers can add them to
// times without overflow (about 31 years).
const maxSeconds = 1 << 30

func parseSeconds(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("rating: bad number of seconds %q", s)
	}
	if n > maxSeconds {
		n = maxSeconds
	}
	return n, nil
}

// ParseMaxSessionTime parses a MaxSessionTime reply (without its final
// empty line). See rating-protocol.md for the table of answers.
func ParseMaxSessionTime(reply string) (MaxTime, error) {
	lines := replyLines(reply)
	if len(lines) == 0 {
		return MaxTime{}, errors.New("rating: empty MaxSessionTime reply")
	}
	first := lines[0]
	if err := engineError(first); err != nil {
		return MaxTime{}, err
	}
	var mt MaxTime
	switch {
	case strings.EqualFold(first, "none"):
		mt.Kind = Unlimited
	case strings.EqualFold(first, "locked"):
		mt.Kind, mt.Prepaid = Locked, true
	default:
		n, err := parseSeconds(first)
		if err != nil {
			return MaxTime{}, fmt.Errorf("rating: unexpected MaxSessionTime reply %q", truncate(first))
		}
		mt.Kind, mt.Seconds, mt.Prepaid = Limited, n, true
	}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "type") {
			continue // rating detail we do not need
		}
		switch v = strings.TrimSpace(v); {
		case strings.EqualFold(v, "prepaid"):
			mt.Prepaid = true
		case strings.EqualFold(v, "postpaid"):
			mt.Prepaid = false
		default:
			return MaxTime{}, fmt.Errorf("rating: unknown account type %q", truncate(v))
		}
		break
	}
	return mt, nil
}

// ParseDebit parses a DebitBalance reply. "Failed" is an answer (nothing
// was debited), not an error.
func ParseDebit(reply string) (DebitReply, error) {
	lines := replyLines(reply)
	if len(lines) == 0 {
		return DebitReply{}, errors.New("rating: empty DebitBalance reply")
	}
	first := lines[0]
	if err := engineError(first); err != nil {
		return DebitReply{}, err
	}
	if strings.EqualFold(first, "failed") {
		return DebitReply{}, nil
	}
	if !strings.EqualFold(first, "ok") {
		return DebitReply{}, fmt.Errorf("rating: unexpected DebitBalance reply %q", truncate(first))
	}
	dr := DebitReply{OK: true}
	found := false
	for i, l := range lines[1:] {
		k, v, ok := strings.Cut(l, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "maxsessiontime") {
			continue
		}
		n, err := parseSeconds(strings.TrimSpace(v))
		if err != nil {
			// Debited, but we cannot tell the remaining calls' limit;
			// the caller keeps their current limits.
			return dr, fmt.Errorf("rating: DebitBalance reply: %w", err)
		}
		dr.MaxSessionTime, found = n, true
		if i+2 < len(lines) && isPrice(lines[i+2]) {
			dr.Price = lines[i+2]
		}
		break
	}
	if !found {
		return dr, errors.New("rating: DebitBalance reply without MaxSessionTime")
	}
	return dr, nil
}

func isPrice(s string) bool {
	if len(s) > 32 {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil && !strings.ContainsAny(s, "xXpPnNiI_")
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
