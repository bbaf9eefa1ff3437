package debit

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/callcontrol/callcontrol/internal/rating"
)

// Prefix is the store key prefix of debit records.
const Prefix = "d/"

// Owed is one debit owed to an engine, as the spool keeps it.
type Owed struct {
	ID uint64 // assigned by Spool.Op; orders an engine's debits
	rating.Owed
	Attempted bool // this form of the debit may have reached the engine
	// Prepared: marked, in a flushed batch, for a send that may start at
	// any moment; each send marks Attempted first (spool.go, prepare).
	// It holds the boot ID of the run that marked it ("" when not
	// prepared): see Restore.
	Prepared string
	Created  time.Time
	Tries    int // sends so far (for operators)
}

// Key is the store key of the record with this ID.
func Key(id uint64) string { return fmt.Sprintf("%s%016x", Prefix, id) }

// wire is the stored form: own field names, so renaming a Go field never
// makes saved debits unreadable.
type wire struct {
	ID          uint64    `json:"id"`
	Engine      string    `json:"engine"`
	CallID      string    `json:"callid"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	Gateway     string    `json:"gateway"`
	Application string    `json:"application"`
	Duration    int       `json:"duration"`
	Force       bool      `json:"force,omitempty"`
	Attempted   bool      `json:"attempted,omitempty"`
	Prepared    string    `json:"prepared,omitempty"`
	Created     time.Time `json:"created"`
	Tries       int       `json:"tries,omitempty"`
}

func encode(o Owed) []byte {
	b, err := json.Marshal(wire{
		ID: o.ID, Engine: o.Engine, CallID: o.Debit.CallID, From: o.Debit.From, To: o.Debit.To,
		Gateway: o.Debit.Gateway, Application: o.Debit.Application, Duration: o.Debit.Duration,
		Force: o.Debit.Force, Attempted: o.Attempted, Prepared: o.Prepared, Created: o.Created, Tries: o.Tries,
	})
	if err != nil {
		panic(err) // only strings, numbers, bools and a time: cannot fail
	}
	return b
}

func decode(b []byte) (Owed, error) {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return Owed{}, err
	}
	if w.ID == 0 || w.CallID == "" {
		return Owed{}, fmt.Errorf("debit record without id or callid")
	}
	return Owed{
		ID: w.ID, Attempted: w.Attempted, Prepared: w.Prepared, Created: w.Created, Tries: w.Tries,
		Owed: rating.Owed{Engine: w.Engine, Debit: rating.Debit{CallID: w.CallID, From: w.From, To: w.To, Gateway: w.Gateway,
			Application: w.Application, Duration: w.Duration, Force: w.Force}},
	}, nil
}

// Restore decodes the debit records among a store's live set (keys with
// Prefix; others are ignored), oldest first. A record that may have reached
// the engine before the daemon stopped is fate unknown, so its Force is
// cleared. A record prepared but not attempted never left if it was
// prepared in the running boot (boot, store.BootID): its send's own mark,
// written to the page cache before the send, would be here, as a kill -9
// keeps the page cache. Prepared in another boot, before a kernel crash
// or a power cut, that mark may be lost, so it is fate unknown.
// Unreadable records are logged: those debits are lost.
func Restore(records map[string][]byte, boot string, log *slog.Logger) []Owed {
	var out []Owed
	for k, v := range records {
		if !strings.HasPrefix(k, Prefix) {
			continue
		}
		o, err := decode(v)
		if err == nil && Key(o.ID) != k {
			err = fmt.Errorf("id %d does not match key", o.ID)
		}
		if err != nil {
			log.Error("debit: saved debit unreadable, it will not be delivered", "key", k, "record", strconv.Quote(string(v)), "err", err)
			continue
		}
		if o.Prepared != "" && (boot == "" || o.Prepared != boot) {
			o.Attempted = true
		}
		o.Prepared = ""
		if o.Attempted {
			o.Debit.Force = false
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
