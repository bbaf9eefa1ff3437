// Package store is a small durable key/value log: the daemon's memory of its
// calls and of the debits it owes, kept across kill -9 and power cuts.
//
// Values are opaque bytes; the owner (the session and debit packages) encodes
// its own records. The owner keeps the live table in memory; the store only
// makes changes durable and gives the table back at Open: OpenReplay hands
// over the ops one at a time as the files are read (the snapshot a chunk at
// a time), so the owner decodes its table without the files or a map of
// their records beside it.
//
// On disk (one directory, 0700):
//
//	LOCK                  flock'd while open: two daemons never share a log
//	snapshot              the live set at the last Compact, written atomically
//	wal-<seq hex>.log     write-ahead segments, replayed in order on top
//
// Every batch of ops given to one Apply (or Stage) is one frame
// (length, CRC32C over length and payload, payload), so after a crash a batch
// is either entirely there or entirely absent. Batches are queued in call
// order and written by one writer at a time, in that order. With fsync
// (the default Options) the writer goroutine writes them all: concurrent
// batches are grouped into one write() and one fsync() (group commit), and
// Commit.Wait returns once the batch is durable. With Options.NoSync the
// batch is copied into the ring instead (ring.go: a file mapped shared,
// written round and round), and Wait returns once it is there (in the
// page cache: kill -9 loses nothing); a caller in Wait copies what is
// queued itself when no one else is writing (sparing the hand-off to the
// writer goroutine), the writer goroutine copies the rest: Apply wakes
// it, and a staged batch nobody waits for is taken by the flusher within
// its interval. The flusher drains the ring into the segment (flush.go);
// Options.FlushEvery makes it also fdatasync what it drained, within
// that interval; Log.AwaitFlush waits for that round (the debit spool,
// before a send).
//
// Replay stops at a torn or corrupt frame in a segment (kept: everything
// before it) and goes on with the next segment; a damaged snapshot keeps the
// frames that check out. Damage is logged, never fatal: the daemon starts.
//
// Ordering contract for the owner: update the in-memory table before (or
// atomically with, under the lock that Compact's dump takes) calling Apply,
// so that any op written before a Compact rotation is visible to its dump.
package store
