package session

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/callcontrol/callcontrol/internal/sipdialog"
)

// NoLimit marks a session without a time limit.
const NoLimit = -1

// Session is one tracked call. The manager's lock guards every field.
type Session struct {
	CallID      string
	Party       string // billing party, sip:user@host
	RURI        string // destination, rated as To
	Diverter    string
	SourceIP    string // rated as Gateway
	FromTag     string
	Token       string // call_token, "None" when the proxy set none
	Application string // audio unless the proxy said otherwise
	Engine      string // rating engine of a prepaid call, "" otherwise

	Prepaid   bool // the limit comes from the rating engine
	Owed      bool // the engine returned a number: exactly one debit is owed
	HasDialog bool

	// endByOperator: the timer ends the call on an operator's terminate
	// (ends.go), not its time limit. Not saved; it fits in padding.
	endByOperator bool

	Dialog    sipdialog.ID
	CallLimit int
	Cap       int // prepaid: prepaid_limit or limit, NoLimit if none
	Limit     int // seconds, NoLimit if none

	// EndAtAnswer, when set, says why the call is to be ended the moment
	// it is answered: it was ordered ended (or ran out of setup time)
	// while ringing, and the proxy cannot end a dialog before `start`.
	EndAtAnswer string

	Created  time.Time
	Answered time.Time // zero until start
	EndAt    time.Time // zero unless answered with a limit

	timerAt int       // its slot in the manager's timers (timers.go), plus 1; 0 if none
	checkAt time.Time // next re-ask of the engine (recheck.go), zero if none
	seq     uint64    // place in the manager's order (listing.go)
	// counted is the generation of the engine connection on which the
	// engine last counted the call (restart.go); 0: before this run.
	counted uint64
}

// InProgress tells whether the call was answered.
func (s *Session) InProgress() bool { return !s.Answered.IsZero() }

// State is the operator's word for where the call is.
func (s *Session) State() string {
	if s.InProgress() {
		return "in-progress"
	}
	return "pending"
}

// Remaining is the time left before the call is cut, or NoLimit.
func (s *Session) Remaining(now time.Time) int {
	if s.EndAt.IsZero() {
		return NoLimit
	}
	d := s.EndAt.Sub(now)
	if d < 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

const recordVersion = 1

// Marshal encodes the session for the state log: compact, versioned.
func (s *Session) Marshal() []byte {
	return s.AppendRecord(make([]byte, 0, 64+len(s.CallID)+len(s.Party)+len(s.RURI)+len(s.Diverter)+len(s.SourceIP)+
		len(s.FromTag)+len(s.Token)+len(s.Application)+len(s.Engine)))
}

// AppendRecord appends what Marshal returns to b.
func (s *Session) AppendRecord(b []byte) []byte {
	b = append(b, recordVersion)
	for _, str := range [...]string{s.CallID, s.Party, s.RURI, s.Diverter, s.SourceIP, s.FromTag, s.Token, s.Application, s.Engine} {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	var flags byte
	if s.Prepaid {
		flags |= 1
	}
	if s.Owed {
		flags |= 2
	}
	if s.HasDialog {
		flags |= 4
	}
	switch s.EndAtAnswer {
	case "":
	case EndAtAnswerSetupTime:
		flags |= 16
	default:
		flags |= 8
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(s.Dialog.Entry))
	b = binary.AppendUvarint(b, uint64(s.Dialog.ID))
	b = binary.AppendVarint(b, int64(s.CallLimit))
	b = binary.AppendVarint(b, int64(s.Cap))
	b = binary.AppendVarint(b, int64(s.Limit))
	for _, t := range [...]time.Time{s.Created, s.Answered, s.EndAt} {
		var n int64
		if !t.IsZero() {
			n = t.UnixNano()
		}
		b = binary.AppendVarint(b, n)
	}
	return b
}

var errRecord = errors.New("session record: corrupt")

// Unmarshal decodes what Marshal wrote.
func Unmarshal(b []byte) (*Session, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, errRecord
	}
	d := decoder{b: b[1:]}
	s := &Session{}
	for _, p := range [...]*string{&s.CallID, &s.Party, &s.RURI, &s.Diverter, &s.SourceIP, &s.FromTag, &s.Token, &s.Application, &s.Engine} {
		*p = d.string()
	}
	flags := d.byte()
	s.Prepaid, s.Owed, s.HasDialog = flags&1 != 0, flags&2 != 0, flags&4 != 0
	switch {
	case flags&16 != 0:
		s.EndAtAnswer = EndAtAnswerSetupTime
	case flags&8 != 0:
		s.EndAtAnswer = EndAtAnswerOperator
	}
	s.Dialog.Entry = uint32(d.uvarint())
	s.Dialog.ID = uint32(d.uvarint())
	s.CallLimit = int(d.varint())
	s.Cap = int(d.varint())
	s.Limit = int(d.varint())
	for _, p := range [...]*time.Time{&s.Created, &s.Answered, &s.EndAt} {
		if n := d.varint(); n != 0 {
			*p = time.Unix(0, n)
		}
	}
	if d.err || s.CallID == "" {
		return nil, errRecord
	}
	// Versions before the party was folded wrote it as the From header
	// spelled it; fold it so restored calls group with new ones.
	s.Party = FoldParty(s.Party)
	return s, nil
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = true
		d.b = nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
