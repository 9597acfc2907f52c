package gossip

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// orderRecorder notes the order of the calls it gets.
type orderRecorder struct {
	mu  sync.Mutex
	got []string
}

func (r *orderRecorder) note(kind string, m Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, kind+"("+m.ID+")")
}

func (r *orderRecorder) NodeAlive(m Member)    { r.note("alive", m) }
func (r *orderRecorder) NodeDead(m Member)     { r.note("dead", m) }
func (r *orderRecorder) NodeRejoined(m Member) { r.note("rejoined", m) }
func (r *orderRecorder) NodeUpdated(m Member)  { r.note("updated", m) }

func (r *orderRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.got, " ")
}

// TestEventQueueOrder: events pushed while the handler is away are all
// delivered, in push order, to the right method.
func TestEventQueueOrder(t *testing.T) {
	q := newEventQueue()
	kinds := []eventKind{evAlive, evDead, evRejoined, evUpdated}
	var want []string
	for i := range 1000 {
		k := kinds[i%len(kinds)]
		id := fmt.Sprint("n", i)
		q.push(event{kind: k, member: Member{ID: id}})
		want = append(want, fmt.Sprintf("%s(%s)", k, id))
	}
	r := &orderRecorder{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.dispatch(r, stop)
	}()
	eventually(t, 5*time.Second, "all events delivered", func() (bool, string) {
		got := r.String()
		return got == strings.Join(want, " "), fmt.Sprintf("%d of %d delivered", strings.Count(got, "("), len(want))
	})
	close(stop)
	<-done
}

// TestCallbackGate: close waits for running callbacks and refuses new ones;
// enter nests.
func TestCallbackGate(t *testing.T) {
	g := newCallbackGate()
	for range 2 { // callbacks may nest
		if !g.enter() {
			t.Fatal("enter refused on an open gate")
		}
	}
	closed := make(chan struct{})
	go func() {
		g.close()
		close(closed)
	}()
	g.exit()
	select {
	case <-closed:
		t.Fatal("close returned with a callback still running")
	case <-time.After(20 * time.Millisecond): // NB: proves a negative; a short bound is all there is
	}
	g.exit()
	eventually(t, 5*time.Second, "close returns once idle", func() (bool, string) {
		select {
		case <-closed:
			return true, ""
		default:
			return false, "close still waiting"
		}
	})
	if g.enter() {
		t.Fatal("enter allowed after close")
	}
}
