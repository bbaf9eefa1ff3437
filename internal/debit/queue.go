package debit

// queue is a worker's debits in delivery order: a list threaded through
// the entries, so that a debit leaves it (delivered, dropped, moved by a
// reroute) in constant time wherever it is, with no scan or copy of an
// outage's backlog under the lock a call's end takes.
type queue struct {
	head, tail *entry
	n          int
}

func (q *queue) push(e *entry) {
	e.prev, e.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = e
	} else {
		q.head = e
	}
	q.tail = e
	q.n++
}

func (q *queue) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		q.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		q.tail = e.prev
	}
	e.prev, e.next = nil, nil
	q.n--
}

// dequeueLocked takes e out of the queue it is in, if any.
func (e *entry) dequeueLocked() {
	if e.in != nil {
		e.in.q.remove(e)
		e.in = nil
	}
}
