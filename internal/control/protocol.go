package control

// The wire protocol: one JSON object per line each way, in order, several
// requests per connection. "v" lets a later client and server tell each
// other apart; a server answers requests of versions it does not know with
// CodeBadRequest.
//
// The sessions reply is one such line however many sessions there are
// (~400 MB at 1,000,000), written as the table is walked (stream.go): the
// same bytes as before it was streamed, so version 1 is unchanged. Read it
// element by element (Client.EachSession), not as a line.

// Version is the protocol version this package speaks.
const Version = 1

// Commands.
const (
	CmdSessions  = "sessions"
	CmdSession   = "session"
	CmdTerminate = "terminate"
	CmdStats     = "stats"
	CmdReload    = "reload"
)

// Error codes in Response.Code.
const (
	CodeNotFound   = "not_found"
	CodeDenied     = "denied"
	CodeBadRequest = "bad_request"
	CodeFailed     = "failed"
	CodeBusy       = "busy"
)

// Request is one operator command.
type Request struct {
	V       int    `json:"v"`
	Cmd     string `json:"cmd"`
	Prefix  string `json:"prefix,omitempty"`  // sessions
	CallID  string `json:"call_id,omitempty"` // session, terminate
	Engine  string `json:"engine,omitempty"`  // debits_reroute
	Confirm bool   `json:"confirm,omitempty"` // debits_drop
}

// Response answers one Request.
type Response struct {
	OK       bool          `json:"ok"`
	Code     string        `json:"code,omitempty"`
	Error    string        `json:"error,omitempty"`
	Sessions []SessionInfo `json:"sessions,omitzero"`
	Session  *SessionInfo  `json:"session,omitempty"`
	Stats    *Stats        `json:"stats,omitempty"`
	// Terminate answers a terminate; a daemon before it answered only OK.
	Terminate *TerminateInfo `json:"terminate,omitempty"`
	// RestartNeeded answers reload: changed options that apply only at a
	// restart (the rest was applied).
	RestartNeeded []string      `json:"restart_needed,omitempty"`
	Debits        []DebitInfo   `json:"debits,omitzero"`
	DebitsResult  *DebitsResult `json:"debits_result,omitempty"`
}

// maxLine bounds one request line: requests are tiny, and an unbounded line
// would let a confused client make the daemon buffer without limit.
const maxLine = 64 << 10
