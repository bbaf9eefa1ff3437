package acct

import (
	"strings"
	"time"
)

// quoteIdent quotes a name radacct.CheckName passed for MySQL.
func quoteIdent(s string) string { return "`" + s + "`" }

// quoteTable quotes a radacct.Table result, database.table included.
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
