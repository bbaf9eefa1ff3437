package radacct

import (
	"strings"
	"testing"
	"time"
)

func TestTable(t *testing.T) {
	at := time.Date(2026, 3, 7, 23, 0, 0, 0, time.UTC)
	tests := []struct {
		pattern, want string
		wantErr       bool
	}{
		{DefaultTable, "radacct202603", false},
		{"radacct_%y_%m_%d", "radacct_26_03_07", false},
		{"radacct", "radacct", false},
		{"radius.radacct%Y%m", "radius.radacct202603", false},
		{"a.b.c", "", true},
		{"acct%%%Y", "", true}, // % is no table name character
		{"radacct%H", "", true},
		{"radacct%", "", true},
		{"rad`acct", "", true},
		{strings.Repeat("a", 61) + "%Y", "", true},
	}
	for _, tt := range tests {
		got, err := Table(tt.pattern, at)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Table(%q) = %q, %v; want %q, err %v", tt.pattern, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		s  string
		ok bool
	}{
		{DefaultSessionID, true},
		{DefaultConnectInfoStop, true},
		{"a$b9", true},
		{strings.Repeat("a", MaxName), true},
		{strings.Repeat("a", MaxName+1), false},
		{"radacct%Y%m", false},
		{"", false},
		{"a`b", false},
		{"a b", false},
		{"db.table", false},
		{"x;DROP", false},
		{"a) OR (1", false},
		{"naïve", false},
	}
	for _, tt := range tests {
		if err := CheckName(tt.s); (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tt.s, err, tt.ok)
		}
	}
}

// Every default passes the checks the config file's values must pass.
func TestDefaultsAreValid(t *testing.T) {
	if _, err := Table(DefaultTable, time.Now()); err != nil {
		t.Error(err)
	}
	for _, c := range []string{DefaultSessionID, DefaultFromTag, DefaultToTag, DefaultSessionTime, DefaultStopTime,
		DefaultConnectInfoStop, DefaultMediaInfo} {
		if err := CheckName(c); err != nil {
			t.Error(err)
		}
	}
}
