// Package gossip tells a mnemo node who is alive and carries the node's
// replicated ring state to every other node. It is a thin driver over
// hashicorp/memberlist (SWIM with the Lifeguard extensions).
//
// It implements the failure-detection half of Dynamo section 4.8
// ("Membership and Failure Detection"): a gossip protocol spreads each
// node's liveness and a small piece of node meta, and a full-state
// push/pull plus prompt broadcasts spread the ring-state CRDT, so every node
// computes the same ring without a leader.
//
// # Liveness is not ring membership
//
// gossip only reports liveness (alive, dead, left, rejoined) and carries the
// ring state as opaque bytes. It never adds or removes a node from the ring:
// a dead node keeps its partitions and sloppy quorum covers for it (Dynamo
// 4.8, Cassandra), so a transient failure moves no data. Ring membership is
// changed only by the ring-state CRDT, which lives in package ring and is
// edited by the node on an operator's command.
//
// # What the caller provides
//
//   - A StateDelegate: LocalState returns the full encoded ring state and
//     MergeRemoteState joins a peer's state into the local one. The join must
//     be idempotent, commutative and cheap when nothing changed, because the
//     same state arrives many times (every push/pull and every
//     retransmission of a broadcast). Both methods may be called concurrently
//     from several goroutines.
//   - An Events handler: NodeAlive, NodeDead, NodeRejoined and NodeUpdated,
//     called in order on one goroutine that gossip owns, never on
//     memberlist's own goroutines, so a slow handler cannot stall the failure
//     detector. NodeRejoined is the signal for hinted handoff and for an
//     immediate anti-entropy exchange.
//   - After each local change of the ring state, a call to BroadcastState.
//     Push/pull repairs any lost broadcast, but only every PushPullInterval.
//   - Close when done. Leave first for a graceful exit (peers then see the
//     node as Left rather than Dead, sooner than the failure detector would).
//
// # Rejoins
//
// Each process picks a random boot id at start and gossips it in its node
// meta. A member is reported NodeRejoined when memberlist sees it alive after
// it was dead or left (including a SIGSTOP-paused process that resumes and
// refutes its death), and also when it is alive with a boot id other than the
// last one seen: a process that restarted faster than the failure detector
// noticed. A restarted node may reuse its name and address; memberlist then
// accepts it because the new process refutes the stale incarnation it finds
// in the first push/pull. Under a new address it is accepted by the first
// push/pull after the old address has been dead for DeadNodeReclaimTime
// (memberlist's default, 0, would refuse it until the dead entry is
// forgotten after GossipToTheDeadTime).
//
// Suspicion is not reported: memberlist v0.7.0 has no event for it, so a
// member is Alive until it is declared Dead.
//
// # Encryption
//
// Config.Encryption and Config.Keys turn on memberlist's keyring:
// AES-256-GCM on every packet and stream, ClusterName (memberlist's Label)
// as the authenticated data, the first key the primary. memberlist reads
// GossipVerifyIncoming and GossipVerifyOutgoing unsynchronized on every
// packet, so they are fixed at New; what changes at runtime is the
// keyring's contents, which is all memberlist's EncryptionEnabled looks
// at. That gives the three modes of a rolling enable:
//
//   - disabled: no keyring; plaintext only.
//   - transitional: verify-incoming off, verify-outgoing on, and a keyring
//     that starts empty: it sends and reads plaintext exactly as a
//     disabled node until EnableEncryption installs the keys; from then on
//     it sends encrypted and reads both.
//   - required: keys from the start, both flags on: encrypted only.
//
// NB: reading encrypted gossip and sending it are one switch in
// memberlist, so a transitional node that has not turned it on cannot read
// one that has. Two things close that gap. A transitional node tries its
// pending keys on every incoming packet (a thin wrapper around the
// transport) and turns encryption on at the first one that opens, before
// memberlist reads it: members follow the first one within a probe
// interval, inside the suspicion timeout, so nobody is declared dead. And
// a transitional node whose join is answered encrypted (the cluster
// already encrypts) turns it on and joins again. The caller (mnemo's node)
// decides when the first one may: once no member could still be disabled.
// TestEncryptionPairs shows, with real memberlist, which pairs of states
// can form a cluster; a rolling enable only ever puts members in those.
//
// InstallKey, UseKey and RemoveKey rotate keys at runtime (Consul's
// keyring operations); Keyring reports them by Fingerprint, never the
// keys. Nothing is written to disk.
//
// A sample wiring. The caller owns the state and the event handler; only
// the gossip.* names are this package's:
//
//	// ring is the caller's state, a CRDT (mnemo's node keeps ring.State).
//	func (r *ring) LocalState() []byte                 { return r.encode() }
//	func (r *ring) MergeRemoteState(buf []byte) error { return r.merge(buf) }
//
//	cfg := gossip.DefaultConfig()
//	cfg.NodeID = "node-1"
//	cfg.BindAddr = "10.0.0.1:7946"
//	cfg.Join = []string{"10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946"}
//	cfg.Meta = []byte("10.0.0.1:7000") // small, gossiped with liveness
//	cfg.State = r                      // a gossip.StateDelegate
//	cfg.Events = handler               // a gossip.Events: NodeAlive, NodeDead, ...
//	g, err := gossip.New(cfg)
//	...
//	r.set(change)      // the caller changes its state,
//	g.BroadcastState() // and pushes it at once rather than at the next push/pull
//	...
//	_ = g.Leave(5 * time.Second)
//	_ = g.Close()
package gossip
