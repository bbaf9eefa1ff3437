// Package rating is the client of the CDRTool rating engine: MaxSessionTime
// asks how long a prepaid call may last, DebitBalance takes the money when it
// ends. See ../shared/spec/rating-protocol.md.
//
// Use a Pool: Pick(party) names the engine for a billing party (the engine
// its calls already use, else a healthy one); Acquire/Release count the
// party's tracked calls so it stays there while it has any. Requests go one
// at a time per engine connection, each in one write, with a deadline from
// the context (or Options.Timeout).
//
// Errors: errors.Is(err, ErrNotSent) means the engine certainly never saw the
// request (no connection, backoff, queue wait timed out, invalid values);
// any other error leaves its fate unknown (written, no complete reply), so a
// debit must then be re-sent without Force. ErrInvalid (which also matches
// ErrNotSent) is permanent: the values can never be sent. ErrEngine marks an
// "Error: ..." answer from the engine.
//
// Every answer (MaxTime, DebitReply) carries the Generation of the
// connection that brought it, numbered from 1 per engine: an engine that
// restarted, forgetting the sessions it counted, shows only as a later
// generation (the session manager holds such calls: session/restart.go).
//
// A DebitReply with OK false ("Failed") means nothing was debited. For a
// debit that certainly never reached the engine (ErrNotSent earlier) and is
// then answered Failed, re-send with Force; a debit whose fate was unknown
// is re-sent without Force, and Failed then means it was already applied.
//
// API in short:
//
//	p := rating.NewPool(addrs, rating.Options{Timeout: 500 * time.Millisecond}, log)
//	eng := p.Pick(party)                 // "" when no engine is configured
//	mt, err := p.MaxSessionTime(ctx, eng, rating.Request{...})
//	p.Acquire(party, eng)                // per tracked call; Release(party) when it ends
//	p.Hold(party, eng)                   // per debit owed there; Unhold(party) once it is not
//	to := p.Route(party, eng)            // where a debit owed to an engine being left goes
//	dr, err := p.DebitBalance(ctx, eng, rating.Debit{...})
//	up, total := p.Connected()
//	p.SetAddrs(newAddrs)                 // at reload
//	p.Close()
//
// The fake engine for tests is internal/rating/ratingtest.
package rating
