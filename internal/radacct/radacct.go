// Package radacct names the radacct tables of a RADIUS accounting
// database as the config file gives them: the table pattern and the
// column names, their defaults (those of CDRTool and the original), and
// the rules that make them safe to paste into SQL. The config package
// checks a file with it and the accounting poller (acct) reads the tables
// with it, so what loads is what the poller can use.
package radacct

import (
	"fmt"
	"strings"
	"time"
)

// The defaults: the monthly table and the columns CDRTool and the
// original used.
const (
	DefaultTable           = "radacct%Y%m"
	DefaultSessionID       = "AcctSessionId" // the SIP Call-ID
	DefaultFromTag         = "SipFromTag"
	DefaultToTag           = "SipToTag"
	DefaultSessionTime     = "AcctSessionTime"
	DefaultStopTime        = "AcctStopTime"
	DefaultConnectInfoStop = "ConnectInfo_stop"
	DefaultMediaInfo       = "MediaInfo"
)

// MaxName is MySQL's limit for table and column names.
const MaxName = 64

// CheckName returns an error unless s is a plain table or column name.
// Names come from the config file, never the network, but they are
// pasted into SQL text (placeholders cannot name columns), so only a safe
// alphabet passes.
func CheckName(s string) error {
	if s == "" {
		return fmt.Errorf("empty name")
	}
	if len(s) > MaxName {
		return fmt.Errorf("name %q longer than %d", s, MaxName)
	}
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '$':
		default:
			return fmt.Errorf("name %q: character %q not allowed (use [A-Za-z0-9_$])", s, r)
		}
	}
	return nil
}

// Table expands the strftime subset %Y %y %m %d %% of pattern for t (the
// radacct tables are monthly: the poller reads this month's and last
// month's) and checks that the result is a table name, optionally
// database.table.
func Table(pattern string, t time.Time) (string, error) {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(pattern) {
			return "", fmt.Errorf("table pattern %q: trailing %%", pattern)
		}
		switch pattern[i] {
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case 'y':
			fmt.Fprintf(&b, "%02d", t.Year()%100)
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case '%':
			b.WriteByte('%')
		default:
			return "", fmt.Errorf("table pattern %q: unsupported directive %%%c (use %%Y %%m %%d %%y %%%%)", pattern, pattern[i])
		}
	}
	name := b.String()
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return "", fmt.Errorf("table name %q: at most database.table", name)
	}
	for _, p := range parts {
		if err := CheckName(p); err != nil {
			return "", fmt.Errorf("table name: %w", err)
		}
	}
	return name, nil
}
