// Package debit is the durable debit spool: every DebitBalance the daemon
// owes the rating engine is written to the store in the same atomic batch
// that ends its session, and delivered in the background exactly once,
// across engine outages and daemon crashes.
//
// Exactly once rests on what is persisted before each send. A record's
// Attempted flag means "this debit, in its current form, may have reached
// the engine". The debits at the head of an engine's queue are first
// marked Prepared together, in one batch and one flush (the session's end
// recorded before them is then durable too); each is marked Attempted,
// in the page cache, just before its own send; those a failed round
// leaves unsent are unmarked. Then:
//
//   - Ok: delivered; the record is deleted.
//   - not sent (rating.ErrNotSent): Attempted goes back to what it was; retry.
//   - fate unknown (any other error): retry without Force; a Failed reply
//     to such a resend means the first one was applied.
//   - Failed to a debit that had never reached the engine: the engine does
//     not know the call (purged); resend once with Force=1, Attempted false
//     again until that forced send is itself made durable as attempted.
//   - Failed to a forced debit: the engine cannot price it; dropped, logged.
//
// A record restored with Attempted set is fate unknown: it is resent
// without Force. One restored Prepared and not Attempted never left if it
// was prepared in the running boot (the mark carries the kernel's boot
// ID; a kill -9 keeps the page cache, so its Attempted mark would be
// there); prepared before a kernel crash or a power cut, it is fate
// unknown too. A batch is one debit until the engine answers, so an
// outage never leaves more than one debit of an engine fate unknown.
//
// Debits of one engine go one at a time, in order (the engine is
// single-threaded); each engine has its own goroutine and backoff.
//
// A call's end takes the spool's lock to record its debit, so what reads
// the whole backlog (operators' listings, drop and reroute, a snapshot's
// dump) copies it in chunks, letting go of the lock between them
// (walk.go). A reroute whose record cannot be written keeps the debit
// moved in memory and says so apart (Rerouted.NotWritten): no send leaves
// before the flush that prepare waits for, which fails until a snapshot
// has written the spool's state again, so a crash before that leaves it
// owed to the old engine, never sent to both.
package debit
