package gossip

import (
	"bytes"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// eventKind names the Events method an event is delivered to.
type eventKind uint8

const (
	evAlive eventKind = iota + 1
	evDead
	evRejoined
	evUpdated
)

func (k eventKind) String() string {
	switch k {
	case evAlive:
		return "alive"
	case evDead:
		return "dead"
	case evRejoined:
		return "rejoined"
	case evUpdated:
		return "updated"
	default:
		return "unknown"
	}
}

// event is one liveness change for the Events handler.
type event struct {
	kind   eventKind
	member Member
}

// observation is what memberlist told us about a member.
type observation uint8

const (
	// obsJoin: memberlist's NotifyJoin, the member is alive (new, or after
	// dead/left).
	obsJoin observation = iota + 1
	// obsUpdate: memberlist's NotifyUpdate, a live member's meta changed.
	obsUpdate
	// obsLeave: memberlist's NotifyLeave, the member is dead or left.
	obsLeave
)

// record is the table's entry for one member.
type record struct {
	m Member
	// bootKnown is false until a valid envelope arrived from the member, so
	// that its first boot id is not taken for a restart.
	bootKnown bool
	// leaving is the member's last leaving flag: a following obsLeave is a
	// graceful Left, not a Dead.
	leaving bool
}

// memberTable is this node's view of every member seen in this process's
// life. Dead members are never forgotten (memberlist forgets them after
// GossipToTheDeadTime): a member seen again after that is still a rejoin,
// not a new member, and the set of node ids of a cluster is small.
type memberTable struct {
	mu struct {
		sync.Mutex
		// byID holds every member ever seen, by id.
		byID map[string]*record
	}
	// alive counts members in state Alive; read without the lock by the
	// broadcast queue (called under memberlist's locks).
	alive atomic.Int64
}

func newMemberTable() *memberTable {
	t := &memberTable{}
	t.mu.byID = make(map[string]*record)
	return t
}

// observe applies what memberlist reported about member id at addr, with
// env its decoded meta (envOK false if the meta did not decode; then the
// previous meta and boot id are kept). It returns the event to deliver, if
// any. The rules:
//
//   - first sight, alive: NodeAlive
//   - dead or left, then alive: NodeRejoined
//   - alive with a boot id other than the last known: NodeRejoined (a
//     restart the failure detector did not notice)
//   - alive, meta or address changed: NodeUpdated (the leaving flag alone
//     is not a change)
//   - alive, then dead or left: NodeDead (Left if the member's last meta
//     said it was leaving)
func (t *memberTable) observe(o observation, id, addr string, env envelope, envOK bool, now time.Time) (event, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.mu.byID[id]

	if o == obsLeave {
		if r == nil || r.m.State == Dead || r.m.State == Left {
			return event{}, false
		}
		r.m.State = Dead
		if r.leaving {
			r.m.State = Left
		}
		r.m.Since = now
		t.alive.Add(-1)
		return event{kind: evDead, member: r.m.clone()}, true
	}

	// obsJoin or obsUpdate: the member is alive.
	if r == nil {
		r = &record{m: Member{ID: id, Addr: addr, State: Alive, Since: now}}
		if envOK {
			r.m.Meta, r.m.BootID, r.bootKnown, r.leaving = env.meta, env.bootID, true, env.leaving
		}
		t.mu.byID[id] = r
		t.alive.Add(1)
		return event{kind: evAlive, member: r.m.clone()}, true
	}

	kind := eventKind(0)
	switch {
	case r.m.State == Dead || r.m.State == Left:
		kind = evRejoined
		r.m.State = Alive
		r.m.Since = now
		t.alive.Add(1)
	case envOK && r.bootKnown && env.bootID != r.m.BootID:
		kind = evRejoined
		r.m.Since = now
	case addr != r.m.Addr || (envOK && !bytes.Equal(env.meta, r.m.Meta)):
		kind = evUpdated
	}
	r.m.Addr = addr
	if envOK {
		r.m.Meta, r.m.BootID, r.bootKnown, r.leaving = env.meta, env.bootID, true, env.leaving
	}
	if kind == 0 {
		return event{}, false
	}
	return event{kind: kind, member: r.m.clone()}, true
}

// get returns a copy of member id.
func (t *memberTable) get(id string) (Member, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.mu.byID[id]
	if !ok {
		return Member{}, false
	}
	return r.m.clone(), true
}

// all returns copies of every member, sorted by id.
func (t *memberTable) all() []Member {
	t.mu.Lock()
	out := make([]Member, 0, len(t.mu.byID))
	for _, r := range t.mu.byID {
		out = append(out, r.m.clone())
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// aliveIDs returns the ids of the members in state Alive, sorted.
func (t *memberTable) aliveIDs() []string {
	t.mu.Lock()
	out := make([]string, 0, len(t.mu.byID))
	for id, r := range t.mu.byID {
		if r.m.State == Alive {
			out = append(out, id)
		}
	}
	t.mu.Unlock()
	sort.Strings(out)
	return out
}
