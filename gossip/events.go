package gossip

import "sync"

// eventQueue is an unbounded FIFO of events between memberlist's callbacks,
// which run under memberlist's node lock and so must only enqueue, and the
// dispatcher goroutine, which calls the user's Events handler. Unbounded
// because a blocked handler must not block memberlist, and the number of
// liveness changes is bounded by cluster churn, not by load.
type eventQueue struct {
	mu struct {
		sync.Mutex
		// items are the events not yet taken by the dispatcher, oldest first.
		items []event
	}
	// ready has a value when items may be non-empty (capacity 1: many pushes
	// coalesce into one wake-up).
	ready chan struct{}
}

func newEventQueue() *eventQueue {
	return &eventQueue{ready: make(chan struct{}, 1)}
}

// push appends e; it never blocks.
func (q *eventQueue) push(e event) {
	q.mu.Lock()
	q.mu.items = append(q.mu.items, e)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take removes and returns all queued events.
func (q *eventQueue) take() []event {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.mu.items
	q.mu.items = nil
	return items
}

// dispatch calls h for each event, in order, until stop is closed. It is
// the body of the dispatcher goroutine.
func (q *eventQueue) dispatch(h Events, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-q.ready:
		}
		for _, e := range q.take() {
			select {
			case <-stop:
				return // Close drops what is still queued
			default:
			}
			switch e.kind {
			case evAlive:
				h.NodeAlive(e.member)
			case evDead:
				h.NodeDead(e.member)
			case evRejoined:
				h.NodeRejoined(e.member)
			case evUpdated:
				h.NodeUpdated(e.member)
			}
		}
	}
}

// callbackGate lets Close wait for memberlist callbacks that are running
// user code (LocalState, MergeRemoteState) and turns later ones into no-ops.
// memberlist's Shutdown does not wait for its connection handlers, so
// without the gate a push/pull already in progress could call the
// StateDelegate after Close returned. Unlike an RWMutex it is reentrant.
type callbackGate struct {
	mu struct {
		sync.Mutex
		closed bool
		// running counts callbacks between enter and exit.
		running int
	}
	idle *sync.Cond // signalled when running drops to 0
}

func newCallbackGate() *callbackGate {
	g := &callbackGate{}
	g.idle = sync.NewCond(&g.mu)
	return g
}

// enter reports whether the callback may run; if true, exit must follow.
func (g *callbackGate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.closed {
		return false
	}
	g.mu.running++
	return true
}

func (g *callbackGate) exit() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mu.running--
	if g.mu.running == 0 {
		g.idle.Broadcast()
	}
}

// close refuses later callbacks and waits for the running ones to exit.
func (g *callbackGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mu.closed = true
	for g.mu.running > 0 {
		g.idle.Wait()
	}
}
