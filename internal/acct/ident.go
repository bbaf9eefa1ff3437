package acct

import (
	"fmt"
	"strings"
	"time"
)

// maxIdent is MySQL's limit for table and column names.
const maxIdent = 64

// validIdent reports an error unless s is a plain identifier. Names come from
// the config file, never the network, but they are pasted into SQL text, so
// only a safe alphabet passes (and % for table patterns before expansion).
func validIdent(s string, allowPercent bool) error {
	if s == "" {
		return fmt.Errorf("empty identifier")
	}
	for _, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '$':
		case r == '%' && allowPercent:
		default:
			return fmt.Errorf("identifier %q: character %q not allowed (use [A-Za-z0-9_$])", s, r)
		}
	}
	return nil
}

// quoteIdent quotes a validated identifier for MySQL.
func quoteIdent(s string) string { return "`" + s + "`" }

// TableName expands the strftime subset %Y %y %m %d %% of pattern for t
// (the radacct tables are monthly: the poller reads this month's and last
// month's) and checks that the result is a table name, optionally
// database.table. The config package validates [RadiusDatabase] table
// with it, so what loads is what the poller can use.
func TableName(pattern string, t time.Time) (string, error) {
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
		if err := validIdent(p, false); err != nil {
			return "", fmt.Errorf("table name: %w", err)
		}
		if len(p) > maxIdent {
			return "", fmt.Errorf("table name %q longer than %d", p, maxIdent)
		}
	}
	return name, nil
}

// quoteTable quotes a TableName result, database.table included.
func quoteTable(name string) string {
	db, table, ok := strings.Cut(name, ".")
	if !ok {
		return quoteIdent(name)
	}
	return quoteIdent(db) + "." + quoteIdent(table)
}

// lastMonth returns a time in the month before t's (AddDate(0,-1,0) on the
// 31st can land in the same month).
func lastMonth(t time.Time) time.Time {
	first := time.Date(t.Year(), t.Month(), 1, 12, 0, 0, 0, t.Location())
	return first.AddDate(0, 0, -1)
}
