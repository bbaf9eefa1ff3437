package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/callcontrol/callcontrol/internal/control"
)

// sessionsBlock is how many sessions `sessions` holds at once. A listing
// of up to this many prints as it always did: one table (or JSON array),
// sorted oldest first, aligned. A bigger one (the daemon may track
// 1,000,000 calls, ~500 MB held whole) is printed a block at a time as it
// is read: each block sorted, the blocks in the daemon's order, which is
// oldest first too; a column widens when a later block has a longer value.
const sessionsBlock = 10000

// outputError is a failure to print, not to talk to the daemon.
type outputError struct{ err error }

func (e outputError) Error() string { return "writing output: " + e.err.Error() }
func (e outputError) Unwrap() error { return e.err }

// sessionsPrinter prints sessions as they are read.
type sessionsPrinter interface {
	add(s control.SessionInfo) error
	finish() error
}

// blocks hands sessions on sessionsBlock at a time, each block sorted.
type blocks struct {
	block []control.SessionInfo
	emit  func(block []control.SessionInfo) error
}

func (b *blocks) add(s control.SessionInfo) error {
	b.block = append(b.block, s)
	if len(b.block) < sessionsBlock {
		return nil
	}
	return b.flush()
}

func (b *blocks) flush() error {
	if len(b.block) == 0 {
		return nil
	}
	sortSessions(b.block)
	err := b.emit(b.block)
	clear(b.block)
	b.block = b.block[:0]
	if err != nil {
		return outputError{err}
	}
	return nil
}

var sessionsHeader = []string{"CALL-ID", "PARTY", "DESTINATION", "STATE", "ANSWERED", "LIMIT", "REMAINING"}

// sessionsTable prints the aligned table and the count line under it.
// Columns are as wide as their longest value plus two spaces (the last
// is not padded), as text/tabwriter lays them out, which needs every row
// before it prints one.
type sessionsTable struct {
	blocks
	w       io.Writer
	loc     *time.Location
	widths  []int
	n       int
	byState map[string]int
}

func newSessionsTable(w io.Writer, loc *time.Location) *sessionsTable {
	t := &sessionsTable{w: w, loc: loc, byState: map[string]int{}}
	t.emit = t.print
	return t
}

func (t *sessionsTable) add(s control.SessionInfo) error {
	t.n++
	t.byState[s.State]++
	return t.blocks.add(s)
}

func (t *sessionsTable) print(block []control.SessionInfo) error {
	rows := make([][]string, 0, len(block)+1)
	if t.widths == nil {
		t.widths = make([]int, len(sessionsHeader))
		rows = append(rows, sessionsHeader)
	}
	for _, s := range block {
		rows = append(rows, []string{clean(s.CallID), clean(orDash(s.Party)), clean(orDash(s.Destination)),
			clean(orDash(s.State)), formatTime(s.Answered, t.loc), formatSeconds(s.Limit), formatSeconds(s.Remaining)})
	}
	for _, r := range rows {
		for i, cell := range r {
			t.widths[i] = max(t.widths[i], utf8.RuneCountInString(cell))
		}
	}
	var b bytes.Buffer
	for _, r := range rows {
		last := len(r) - 1
		for i, cell := range r[:last] {
			b.WriteString(cell)
			b.WriteString(strings.Repeat(" ", t.widths[i]-utf8.RuneCountInString(cell)+2))
		}
		b.WriteString(r[last])
		b.WriteByte('\n')
	}
	_, err := t.w.Write(b.Bytes())
	return err
}

func (t *sessionsTable) finish() error {
	if err := t.flush(); err != nil {
		return err
	}
	line := "No sessions."
	if t.n > 0 {
		line = countLineOf(t.n, t.byState)
	}
	if _, err := fmt.Fprintln(t.w, line); err != nil {
		return outputError{err}
	}
	return nil
}

// sessionsJSON prints the array writeJSON prints of the whole list, a
// block at a time.
type sessionsJSON struct {
	blocks
	w     io.Writer
	n     int
	elem  bytes.Buffer
	enc   *json.Encoder
	chunk bytes.Buffer
}

func newSessionsJSON(w io.Writer) *sessionsJSON {
	j := &sessionsJSON{w: w}
	j.enc = json.NewEncoder(&j.elem)
	j.enc.SetIndent("  ", "  ")
	j.enc.SetEscapeHTML(false)
	j.emit = j.print
	return j
}

func (j *sessionsJSON) print(block []control.SessionInfo) error {
	j.chunk.Reset()
	for i := range block {
		if j.n == 0 {
			j.chunk.WriteString("[\n  ")
		} else {
			j.chunk.WriteString(",\n  ")
		}
		j.n++
		j.elem.Reset()
		if err := j.enc.Encode(&block[i]); err != nil {
			return err
		}
		j.chunk.Write(bytes.TrimSuffix(j.elem.Bytes(), []byte("\n")))
	}
	_, err := j.w.Write(j.chunk.Bytes())
	return err
}

func (j *sessionsJSON) finish() error {
	if err := j.flush(); err != nil {
		return err
	}
	end := "\n]\n"
	if j.n == 0 {
		end = "[]\n"
	}
	if _, err := io.WriteString(j.w, end); err != nil {
		return outputError{err}
	}
	return nil
}

// eachSession reads the sessions of USER-PREFIX (args[0], if any) in the
// state asked for, passing each to f as it comes.
func eachSession(o *options, c *control.Client, args []string, f func(control.SessionInfo) error) error {
	prefix := ""
	if len(args) > 0 {
		prefix = args[0]
	}
	return c.EachSession(prefix, func(s control.SessionInfo) error {
		if o.state != "" && s.State != o.state {
			return nil
		}
		return f(s)
	})
}

// partyCounter counts sessions by party as they are read: parties, not
// sessions, are held.
type partyCounter map[string]*partyCount

func (by partyCounter) add(s control.SessionInfo) {
	p := by[s.Party]
	if p == nil {
		p = &partyCount{Party: s.Party}
		by[s.Party] = p
	}
	p.Calls++
	switch s.State {
	case "in-progress":
		p.InProgress++
	case "pending":
		p.Pending++
	}
	if s.Prepaid {
		p.Prepaid++
	}
	if s.Engine != "" {
		p.Engine = s.Engine
	}
}
