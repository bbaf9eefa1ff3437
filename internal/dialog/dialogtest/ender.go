package dialogtest

import (
	"sync"
	"time"
)

// Ender is the fake dialog.Ender: it records the dialogs it was asked to
// end and, when C is set, also sends each one on C (blocking, as a test
// that waits for an end wants). Early says whether it stands for a proxy
// that can end a ringing call (OpenSIPS).
//
// It is generic over the target so that this package need not import
// dialog, whose own tests import it: use Ender[dialog.Target].
type Ender[T any] struct {
	C     chan T
	Early bool

	mu      sync.Mutex
	targets []T
	times   []time.Time // when each target was ended
}

// End records t, then sends it on C if C is set.
func (e *Ender[T]) End(t T) {
	e.mu.Lock()
	e.targets = append(e.targets, t)
	e.times = append(e.times, time.Now())
	e.mu.Unlock()
	if e.C != nil {
		e.C <- t
	}
}

// CanEndEarly reports Early.
func (e *Ender[T]) CanEndEarly() bool { return e.Early }

// Ended returns every target so far.
func (e *Ender[T]) Ended() []T {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]T(nil), e.targets...)
}

// EndedAt returns when the first target that match accepts was ended.
func (e *Ender[T]) EndedAt(match func(T) bool) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, t := range e.targets {
		if match(t) {
			return e.times[i], true
		}
	}
	return time.Time{}, false
}
