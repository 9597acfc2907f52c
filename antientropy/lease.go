package antientropy

import (
	"time"

	"github.com/mnemo-kv/mnemo/ring"
)

// DefaultLeaseTTL is how long a repair lease lasts without a request of
// the exchange holding it.
const DefaultLeaseTTL = 10 * time.Second

// Repair leases: a node takes part in at most one repair of a partition at
// a time. Without them a node that rejoins is repaired by every exchange
// that finds it different: its designated repairer's, the other replicas'
// follow-ups, its own pulls from each replica. Each would send it the same
// missing objects, and on the bench's rejoin two thirds of the objects
// received were such duplicates.
//
// A node holds, per partition, at most one remote lease (the initiator of
// an exchange repairing that partition with it) and the pins of the
// exchanges it initiates itself on it. A roots request finding a
// difference is granted the lease, or answered statusBusy while another
// exchange holds it: the initiator skips the partition and tries it again
// later, when its roots most likely compare equal (the holder repaired
// it). The holder's segments, keys and push requests and its roots
// requests renew the lease; its roots comparison finding the partition
// equal releases it, and a holder that vanished loses it after leaseTTL.
// An initiator pins the partitions it is about to compare; a peer's roots
// request for a pinned partition is busy, except from the pinned peer
// itself when that one has the lower id (both started an exchange with
// the other at once: the lower id's goes on, the other's is busy), and an
// initiator does not pin a partition another exchange holds a lease on.
//
// Leases live in memory only: after a restart a node knows none, which at
// worst lets two exchanges overlap once.
type lease struct {
	remote    ring.NodeID // the initiator repairing this partition with us; "" when none
	remoteExp time.Time   // when the remote lease lapses without a renewal
	pins      int         // exchanges this node initiates on the partition
	pinPeer   ring.NodeID // their peer (one at a time)
}

// heldRemote reports whether a remote lease is held at now.
func (l *lease) heldRemote(now time.Time) bool {
	return l.remote != "" && now.Before(l.remoteExp)
}

// grant is the responder's side: an exchange initiated by from found
// partition p different. It reports whether from may repair it (and
// gives or renews it the lease) or must back off.
func (a *AntiEntropy) grant(p ring.Partition, from ring.NodeID) bool {
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.lease(p)
	if l.pins > 0 && (l.pinPeer != from || from >= a.cl.Self()) {
		return false
	}
	if l.heldRemote(now) && l.remote != from {
		return false
	}
	l.remote, l.remoteExp = from, now.Add(a.leaseTTL)
	return true
}

// renew extends the remote lease on p, if one is held: a segments, keys or
// push request for p comes from its holder.
func (a *AntiEntropy) renew(p ring.Partition) {
	now := a.cfg.Now()
	a.mu.Lock()
	if l := a.mu.leases[p]; l != nil && l.heldRemote(now) {
		l.remoteExp = now.Add(a.leaseTTL)
	}
	a.mu.Unlock()
}

// releaseRemote ends from's lease on p: its exchange found p equal.
func (a *AntiEntropy) releaseRemote(p ring.Partition, from ring.NodeID) {
	a.mu.Lock()
	if l := a.mu.leases[p]; l != nil && l.remote == from {
		l.remote = ""
		a.dropLease(p, l)
	}
	a.mu.Unlock()
}

// pin is the initiator's side: it reports whether this node may start
// comparing p with peer (and pins p), or another exchange is repairing p
// on this node.
func (a *AntiEntropy) pin(p ring.Partition, peer ring.NodeID) bool {
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.lease(p)
	if l.heldRemote(now) || (l.pins > 0 && l.pinPeer != peer) {
		a.dropLease(p, l)
		return false
	}
	l.pins++
	l.pinPeer = peer
	return true
}

// unpin ends one pin of p.
func (a *AntiEntropy) unpin(p ring.Partition) {
	a.mu.Lock()
	if l := a.mu.leases[p]; l != nil && l.pins > 0 {
		l.pins--
		a.dropLease(p, l)
	}
	a.mu.Unlock()
}

// lease returns p's lease record, creating it; mu must be held.
func (a *AntiEntropy) lease(p ring.Partition) *lease {
	l := a.mu.leases[p]
	if l == nil {
		l = &lease{}
		a.mu.leases[p] = l
	}
	return l
}

// dropLease forgets p's record when it holds nothing; mu must be held.
func (a *AntiEntropy) dropLease(p ring.Partition, l *lease) {
	if l.pins == 0 && !l.heldRemote(a.cfg.Now()) {
		delete(a.mu.leases, p)
	}
}
