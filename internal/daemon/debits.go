package daemon

// TEMPORARY until internal/debit lands: replaced by the durable spool.

import (
	"log/slog"

	"github.com/callcontrol/callcontrol/internal/session"
	"github.com/callcontrol/callcontrol/internal/store"
)

type debits struct{ log *slog.Logger }

func (s *state) startDebits(e *engines, m *session.Manager, log *slog.Logger) error {
	s.debits = &debits{log: log}
	return nil
}

func (d *debits) owe(l *store.Log, with store.Op, o session.Owed) session.Wait {
	d.log.Error("debit spool missing", "callid", o.Debit.CallID)
	return l.Apply(with).Wait
}
func (d *debits) dump(put func(string, []byte)) {}
func (d *debits) waiting() int                  { return 0 }
func (d *debits) close()                        {}
