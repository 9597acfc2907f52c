package version

import (
	"bytes"
	"slices"
	"strings"
)

// Actor names who versioned a write: "node-id#epoch". See NewActor.
type Actor string

// NewActor returns the actor id of a node in a given epoch. The epoch must
// change whenever the node starts without its previous data.
func NewActor(node string, epoch string) Actor {
	return Actor(node + "#" + epoch)
}

// Node returns the node id part of an actor.
func (a Actor) Node() string {
	if i := strings.LastIndexByte(string(a), '#'); i >= 0 {
		return string(a[:i])
	}
	return string(a)
}

// Dot identifies one write: the Counter-th write versioned by Actor.
type Dot struct {
	Actor   Actor
	Counter uint64
}

// compare orders dots by actor, then counter.
func (d Dot) compare(o Dot) int {
	if c := strings.Compare(string(d.Actor), string(o.Actor)); c != 0 {
		return c
	}
	switch {
	case d.Counter < o.Counter:
		return -1
	case d.Counter > o.Counter:
		return 1
	}
	return 0
}

// Entry is one actor's position in a version vector.
type Entry struct {
	Actor   Actor
	Counter uint64
}

// VV is a version vector: for each actor, the counter up to which every dot
// of that actor has been seen. Entries are sorted by Actor and counters are
// positive; the zero value is the empty vector. A VV is small (one entry per
// replica that ever versioned the key), so a sorted slice beats a map.
type VV []Entry

// Get returns the counter of actor a (0 when absent).
func (v VV) Get(a Actor) uint64 {
	i, ok := slices.BinarySearchFunc(v, a, func(e Entry, a Actor) int {
		return strings.Compare(string(e.Actor), string(a))
	})
	if !ok {
		return 0
	}
	return v[i].Counter
}

// Covers reports whether the vector has seen dot d.
func (v VV) Covers(d Dot) bool {
	return d.Counter <= v.Get(d.Actor)
}

// Join returns the pointwise maximum of v and o as a new vector.
func (v VV) Join(o VV) VV {
	out := make(VV, 0, max(len(v), len(o)))
	i, j := 0, 0
	for i < len(v) && j < len(o) {
		switch c := strings.Compare(string(v[i].Actor), string(o[j].Actor)); {
		case c < 0:
			out = append(out, v[i])
			i++
		case c > 0:
			out = append(out, o[j])
			j++
		default:
			out = append(out, Entry{v[i].Actor, max(v[i].Counter, o[j].Counter)})
			i++
			j++
		}
	}
	out = append(out, v[i:]...)
	return append(out, o[j:]...)
}

// With returns a copy of v with actor a at counter c (c must not be lower
// than v's counter for a; callers only move forward).
func (v VV) With(a Actor, c uint64) VV {
	return v.Join(VV{{a, c}})
}

// Descends reports whether v has seen everything o has (v >= o pointwise).
func (v VV) Descends(o VV) bool {
	for _, e := range o {
		if v.Get(e.Actor) < e.Counter {
			return false
		}
	}
	return true
}

// Equal reports whether v and o are the same vector.
func (v VV) Equal(o VV) bool {
	return slices.Equal(v, o)
}

// Valid reports whether v is in canonical form: sorted, unique actors,
// positive counters. Decoders use it to reject malformed input.
func (v VV) Valid() bool {
	for i, e := range v {
		if e.Counter == 0 || e.Actor == "" {
			return false
		}
		if i > 0 && strings.Compare(string(v[i-1].Actor), string(e.Actor)) >= 0 {
			return false
		}
	}
	return true
}

// Sibling is one concurrent version of a key's value.
type Sibling struct {
	// Dot is the write that made this sibling.
	Dot Dot
	// Value is the user's value; empty for a tombstone.
	Value []byte
	// Tombstone marks a delete. A tombstone is kept like a value so that the
	// delete replicates and supersedes what it deleted everywhere.
	Tombstone bool
	// Timestamp is the versioning replica's clock at the write, in Unix
	// nanoseconds. Used only for last-write-wins and tombstone reaping,
	// never for causality.
	Timestamp int64
}

// Object is what mnemo stores per key: the concurrent siblings and the causal
// context covering every write the object has seen. The zero value is the
// empty object (never written). Objects are treated as immutable values:
// every operation returns a new Object and leaves its inputs alone.
type Object struct {
	Context  VV
	Siblings []Sibling // sorted by Dot
}

// IsEmpty reports whether the object has never seen a write.
func (o *Object) IsEmpty() bool {
	return o == nil || (len(o.Context) == 0 && len(o.Siblings) == 0)
}

// Live returns the siblings that are values, not tombstones.
func (o *Object) Live() []Sibling {
	if o == nil {
		return nil
	}
	var out []Sibling
	for _, s := range o.Siblings {
		if !s.Tombstone {
			out = append(out, s)
		}
	}
	return out
}

// Deleted reports whether the object reads as not found: it is empty, or
// every sibling is a tombstone.
func (o *Object) Deleted() bool {
	if o == nil {
		return true
	}
	for _, s := range o.Siblings {
		if !s.Tombstone {
			return false
		}
	}
	return true
}

// Update versions a write at the replica whose actor is a, on top of the
// replica's current object o (nil when absent). The write supersedes exactly
// the siblings whose dots ctx covers (what the writer had read); ctx may be
// nil to supersede nothing. It returns the new object and the new dot.
//
// NB: only a home replica may call Update for its own actor, and it must
// serialize Updates per key: the new counter comes from o's context.
func Update(o *Object, ctx VV, a Actor, value []byte, tombstone bool, ts int64) (*Object, Dot) {
	var cur VV
	var sibs []Sibling
	if o != nil {
		cur = o.Context
		sibs = o.Siblings
	}
	dot := Dot{a, max(cur.Get(a), ctx.Get(a)) + 1}
	out := &Object{Context: cur.Join(ctx).With(a, dot.Counter)}
	out.Siblings = make([]Sibling, 0, len(sibs)+1)
	for _, s := range sibs {
		if !ctx.Covers(s.Dot) {
			out.Siblings = append(out.Siblings, s)
		}
	}
	out.Siblings = append(out.Siblings, Sibling{Dot: dot, Value: value, Tombstone: tombstone, Timestamp: ts})
	sortSiblings(out.Siblings)
	return out, dot
}

// Merge returns the join of a and b: each sibling survives if the other side
// holds it too or has not seen its dot; the contexts join. Either may be nil.
func Merge(a, b *Object) *Object {
	if a.IsEmpty() {
		return b.clone()
	}
	if b.IsEmpty() {
		return a.clone()
	}
	out := &Object{Context: a.Context.Join(b.Context)}
	out.Siblings = make([]Sibling, 0, max(len(a.Siblings), len(b.Siblings)))
	i, j := 0, 0
	for i < len(a.Siblings) || j < len(b.Siblings) {
		var c int
		switch {
		case i == len(a.Siblings):
			c = 1
		case j == len(b.Siblings):
			c = -1
		default:
			c = a.Siblings[i].Dot.compare(b.Siblings[j].Dot)
		}
		switch {
		case c == 0: // both hold it
			out.Siblings = append(out.Siblings, a.Siblings[i])
			i++
			j++
		case c < 0: // only a holds it: keep unless b has seen (and so superseded) it
			if !b.Context.Covers(a.Siblings[i].Dot) {
				out.Siblings = append(out.Siblings, a.Siblings[i])
			}
			i++
		default:
			if !a.Context.Covers(b.Siblings[j].Dot) {
				out.Siblings = append(out.Siblings, b.Siblings[j])
			}
			j++
		}
	}
	return out
}

// Equal reports whether two objects hold the same context and siblings.
// Values are identified by their dots, so they are not compared.
func Equal(a, b *Object) bool {
	if a.IsEmpty() || b.IsEmpty() {
		return a.IsEmpty() == b.IsEmpty()
	}
	if !a.Context.Equal(b.Context) || len(a.Siblings) != len(b.Siblings) {
		return false
	}
	for i := range a.Siblings {
		if a.Siblings[i].Dot != b.Siblings[i].Dot || a.Siblings[i].Tombstone != b.Siblings[i].Tombstone {
			return false
		}
	}
	return true
}

// Descends reports whether a already reflects everything in b, so merging b
// into a would change nothing.
func Descends(a, b *Object) bool {
	return Equal(Merge(a, b), a)
}

// Winner returns the last-write-wins sibling: the highest timestamp, then
// the highest actor, then the highest counter; a deterministic order every
// replica agrees on. ok is false for an object without siblings.
func (o *Object) Winner() (s Sibling, ok bool) {
	if o == nil || len(o.Siblings) == 0 {
		return Sibling{}, false
	}
	s = o.Siblings[0]
	for _, c := range o.Siblings[1:] {
		if lwwLess(s, c) {
			s = c
		}
	}
	return s, true
}

func lwwLess(a, b Sibling) bool {
	if a.Timestamp != b.Timestamp {
		return a.Timestamp < b.Timestamp
	}
	return a.Dot.compare(b.Dot) < 0
}

// MaxTimestamp returns the newest sibling timestamp (0 for none).
func (o *Object) MaxTimestamp() int64 {
	var t int64
	if o != nil {
		for _, s := range o.Siblings {
			t = max(t, s.Timestamp)
		}
	}
	return t
}

func (o *Object) clone() *Object {
	if o == nil {
		return &Object{}
	}
	return &Object{Context: slices.Clone(o.Context), Siblings: slices.Clone(o.Siblings)}
}

func sortSiblings(s []Sibling) {
	slices.SortFunc(s, func(a, b Sibling) int { return a.Dot.compare(b.Dot) })
}

// ValueEqual reports whether two siblings carry the same bytes; a helper for
// tests and for the lww read path.
func ValueEqual(a, b Sibling) bool {
	return a.Tombstone == b.Tombstone && bytes.Equal(a.Value, b.Value)
}
