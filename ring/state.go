package ring

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// ErrPartitionMismatch is returned (wrapped) by Merge when the two states
// were created with different non-zero partition counts: they describe
// different clusters, and joining them would re-partition every key.
var ErrPartitionMismatch = errors.New("ring: partition count mismatch")

// NodeID names a node. It is stable across restarts (a wiped data directory
// changes the node's version epoch, not its NodeID).
type NodeID string

// Status of a member in the ring.
//
// NB: wire enum, stored and gossiped as its number. Only append; never
// reorder or reuse a value. Merge breaks version ties towards the higher
// Status, so a later stage of the lifecycle wins a tie.
type Status uint8

const (
	// Joining: announced, not yet owning partitions.
	Joining Status = iota + 1
	// Active: owns partitions.
	Active
	// Leaving: still owns partitions while handing them off.
	Leaving
	// Removed: gone for good; kept as a tombstone so that an older entry
	// gossiped by a lagging peer cannot bring it back.
	Removed
)

// String returns the lower-case name of s ("joining", "active", "leaving",
// "removed"), or "status(N)" for a value this version does not know.
func (s Status) String() string {
	switch s {
	case Joining:
		return "joining"
	case Active:
		return "active"
	case Leaving:
		return "leaving"
	case Removed:
		return "removed"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Member is one node's entry in the ring state. The msgpack tags match the
// keys that State.Encode writes.
type Member struct {
	// ID names the node; it is also the entry's key in State.Members.
	ID NodeID `msgpack:"id"`
	// Zone is the failure domain (rack, availability zone); empty if none.
	Zone string `msgpack:"zone"`
	// Status is where the node is in its lifecycle.
	Status Status `msgpack:"st"`
	// RPCAddr is host:port of the msgpack RPC port (clients and peers).
	RPCAddr string `msgpack:"rpc"`
	// HTTPAddr is host:port of the admin HTTP port.
	HTTPAddr string `msgpack:"http"`
	// GossipAddr is host:port of the memberlist port.
	GossipAddr string `msgpack:"gsp"`
	// RESPAddr is host:port of the Redis-protocol port; empty if disabled.
	RESPAddr string `msgpack:"resp"`
	// Security is the node's security mode (internal/security.Mode:
	// 0 disabled, 1 transitional, 2 required), so that peers know whether
	// to dial it with TLS during a rolling upgrade. Absent (0) from nodes
	// that predate it, which speak plaintext only.
	Security uint8 `msgpack:"sec,omitempty"`
	// Version is bumped by whoever changes this entry (State.Update); the
	// CRDT keeps the entry with the highest.
	Version uint64 `msgpack:"v"`
}

// compareMembers is the total order of the last-writer-wins register:
// Version, then Status (Removed > Leaving > Active > Joining), then the
// remaining fields as strings. Merge keeps the greater entry. Any total order
// works for convergence; this one makes a lifecycle step win a version tie.
func compareMembers(a, b Member) int {
	if c := cmp.Compare(a.Version, b.Version); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Status, b.Status); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Zone, b.Zone); c != 0 {
		return c
	}
	if c := cmp.Compare(a.RPCAddr, b.RPCAddr); c != 0 {
		return c
	}
	if c := cmp.Compare(a.HTTPAddr, b.HTTPAddr); c != 0 {
		return c
	}
	if c := cmp.Compare(a.GossipAddr, b.GossipAddr); c != 0 {
		return c
	}
	if c := cmp.Compare(a.RESPAddr, b.RESPAddr); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Security, b.Security); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// State is the ring membership as a state-based CRDT: a map of
// last-writer-wins registers keyed by node id, each ordered by
// compareMembers, so every node computes the same ring without a leader.
//
// A State is a value, but Members is a map: copies share it. Use Clone before
// handing a State to code that may Merge or Update it.
type State struct {
	// Partitions is Q, fixed at cluster creation. Zero means "not known
	// yet" (a node that has not joined): it adopts the first non-zero Q it
	// merges.
	Partitions int
	// Members holds one entry per node ever seen, Removed ones included;
	// m.ID equals its key.
	Members map[NodeID]Member
}

// NewState returns an empty state for a cluster of q partitions (0 if not
// known yet). It does not validate q; Encode and DecodeState do.
func NewState(q int) State {
	return State{Partitions: q, Members: make(map[NodeID]Member)}
}

// Clone returns a deep copy of s (Members is a fresh map).
func (s State) Clone() State {
	c := State{Partitions: s.Partitions, Members: make(map[NodeID]Member, len(s.Members))}
	for id, m := range s.Members {
		c.Members[id] = m
	}
	return c
}

// Merge joins o into s and reports whether s changed. It is commutative,
// associative and idempotent: any two nodes that have merged the same states,
// in any order and any number of times, hold equal states.
//
// It returns an error wrapping ErrPartitionMismatch, and leaves s unchanged,
// if both have a non-zero Partitions and they differ.
func (s *State) Merge(o State) (changed bool, err error) {
	if s.Partitions != 0 && o.Partitions != 0 && s.Partitions != o.Partitions {
		return false, fmt.Errorf("%w: have %d, got %d", ErrPartitionMismatch, s.Partitions, o.Partitions)
	}
	if s.Partitions == 0 && o.Partitions != 0 {
		s.Partitions = o.Partitions
		changed = true
	}
	if s.Members == nil && len(o.Members) > 0 {
		s.Members = make(map[NodeID]Member, len(o.Members))
	}
	for id, om := range o.Members {
		if cur, ok := s.Members[id]; ok && compareMembers(cur, om) >= 0 {
			continue
		}
		s.Members[id] = om
		changed = true
	}
	return changed, nil
}

// Update sets the entry for m.ID to m with Version = max(existing Version,
// m.Version) + 1, so the new entry wins every merge against what this node
// has seen, and returns the entry as stored. The caller gossips s afterwards.
func (s *State) Update(m Member) Member {
	if s.Members == nil {
		s.Members = make(map[NodeID]Member)
	}
	m.Version = max(s.Members[m.ID].Version, m.Version) + 1
	s.Members[m.ID] = m
	return m
}

// Member returns the entry for id, if any.
func (s State) Member(id NodeID) (Member, bool) {
	m, ok := s.Members[id]
	return m, ok
}

// WithStatus returns the members whose Status is one of st, sorted by ID.
// With no st it returns every member. Normally a Ring is built from
// WithStatus(Active, Leaving).
func (s State) WithStatus(st ...Status) []Member {
	out := make([]Member, 0, len(s.Members))
	for _, m := range s.Members {
		if len(st) == 0 || slices.Contains(st, m.Status) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// NodesOf returns the ring nodes (ID and zone) of members, in the same order;
// feed it to New.
func NodesOf(members []Member) []Node {
	out := make([]Node, len(members))
	for i, m := range members {
		out[i] = Node{ID: m.ID, Zone: m.Zone}
	}
	return out
}
