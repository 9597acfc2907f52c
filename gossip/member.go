package gossip

import (
	"fmt"
	"time"
)

// StateDelegate is the replicated state that gossip carries: the node's
// ring-state CRDT. gossip treats it as opaque bytes.
//
// Both methods may be called concurrently, from gossip's own goroutines and
// from memberlist's push/pull goroutines, and must be safe for that.
type StateDelegate interface {
	// LocalState returns the full encoded state. It is sent in every
	// push/pull and by BroadcastState.
	LocalState() []byte
	// MergeRemoteState joins a peer's state into the local one. It must be
	// idempotent and cheap when nothing changed: the same state arrives once
	// per push/pull and once per retransmission of a broadcast. An error is
	// logged and otherwise ignored; the next push/pull brings the state
	// again.
	MergeRemoteState(buf []byte) error
}

// Events receives liveness changes. Calls are serialized, in the order
// memberlist observed the changes, on one goroutine owned by gossip (not on
// memberlist's callback goroutines), so a slow handler never stalls the
// failure detector. A handler may call any method of Gossip except Close
// (Close waits for the handler to return). Events still queued when Close is
// called are dropped.
//
// The local node is reported too: NodeAlive for itself once at start, and
// NodeUpdated when its own meta changes.
type Events interface {
	// NodeAlive reports a member seen alive for the first time in this
	// process's life, including the members already present when this node
	// joined.
	NodeAlive(m Member)
	// NodeDead reports a member declared dead by the failure detector
	// (m.State == Dead) or that left gracefully (m.State == Left).
	NodeDead(m Member)
	// NodeRejoined reports a member alive again after it was dead or left,
	// or that restarted without being noticed dead (its boot id changed).
	// Hinted handoff and anti-entropy act on it.
	NodeRejoined(m Member)
	// NodeUpdated reports a change of a live member's meta or address, not
	// caused by a restart.
	NodeUpdated(m Member)
}

// Liveness is a member's state as this node last saw it.
type Liveness uint8

// NB: the values show up in status output and logs; only append.
const (
	// Alive: the member answers probes.
	Alive Liveness = iota
	// Suspect: the member failed a probe and may be declared dead soon.
	// NB: memberlist v0.7.0 does not surface suspicion (no event, and its
	// Node.State is never filled in), so gossip does not report it today.
	// It is kept so that callers handle it when a later memberlist does.
	Suspect
	// Dead: the failure detector declared the member dead.
	Dead
	// Left: the member left gracefully (Gossip.Leave).
	Left
)

// String returns the lower-case name of l.
func (l Liveness) String() string {
	switch l {
	case Alive:
		return "alive"
	case Suspect:
		return "suspect"
	case Dead:
		return "dead"
	case Left:
		return "left"
	default:
		return fmt.Sprintf("liveness(%d)", uint8(l))
	}
}

// Member is a snapshot of one member of the cluster as this node sees it.
// It is a copy; the caller may keep and modify it.
type Member struct {
	// ID is the member's Config.NodeID.
	ID string
	// Addr is the member's gossip address, host:port.
	Addr string
	// Meta is the member's user meta (its Config.Meta or the last
	// UpdateMeta). Nil if the member never sent meta gossip could decode.
	Meta []byte
	// BootID is random per process start of the member; 0 if unknown.
	BootID uint64
	// State is the member's liveness.
	State Liveness
	// Since is when this node last saw the member's liveness change (or its
	// boot id change), by this node's clock.
	Since time.Time
}

// clone returns a deep copy of m.
func (m Member) clone() Member {
	if m.Meta != nil {
		m.Meta = append([]byte(nil), m.Meta...)
	}
	return m
}
