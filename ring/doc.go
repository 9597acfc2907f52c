// Package ring decides where data lives in mnemo: which partition a key falls
// in, which nodes hold a partition and in what order, and what the cluster's
// membership is. It is pure: no goroutines, sockets, clocks or files. Every
// function is a function over values, so callers (node/, gossip/,
// antientropy/) feed it what they learned and act on what it returns.
//
// # Partitioning (Dynamo §4.2)
//
// The key space is cut into Q partitions, Q a power of two fixed when the
// cluster is created (DefaultPartitions, at most MaxPartitions). A key's
// partition is the top log2(Q) bits of KeyHash(key), an xxhash64; the bits
// right after those pick the anti-entropy segment (SegmentOf), so that store/
// can lay data out as partition | segment | key and scan a segment as one
// contiguous range.
//
// Dynamo places partitions with a token ring and virtual nodes. mnemo uses
// rendezvous (highest random weight) hashing instead: for partition p every
// node gets the score hash(nodeID || p) and the nodes sorted by descending
// score form p's preference list. Why:
//
//   - Adding one node to n moves about N*Q/(n+1) replicas and nothing else:
//     the new node enters a partition's top N only where it outscores the
//     N-th node, and then displaces exactly that one. Removing a node moves
//     only the replicas it held. A token ring needs careful token choice and
//     many virtual nodes to approach this.
//   - Balance comes from the hash alone, with no virtual nodes to size, store
//     or gossip; Q*n scores are cheap to compute and are cached per partition
//     when a Ring is built.
//
// # Preference lists and fallbacks (Dynamo §4.3, §4.6)
//
// PreferenceList returns every node of the ring for a partition. The first N
// are the home replicas; the rest are the fallbacks, in the order the
// coordinator should try them for a sloppy quorum, each holding a hint for the
// home replica it stands in for. When nodes carry zones, the first N are
// chosen to span as many distinct zones as possible (Dynamo §4.6: replicas
// across data centres), still in score order within that rule.
//
// # Ring state as a CRDT (no leader)
//
// State is the ring membership: one Member entry per node (status, zone,
// addresses), a state-based CRDT that gossip/ carries. Each entry is a
// last-writer-wins register ordered by its Version with deterministic tie
// breaks, so Merge is commutative, associative and idempotent: every node
// that has seen the same entries computes the same ring, in any order of
// arrival, without a leader or consensus round. Whoever changes an entry
// (the node itself on join or leave, an operator command on remove) calls
// Update, which bumps the version.
//
// # The caller's obligations
//
//   - Build a Ring from the members that own data, normally the Active and
//     Leaving ones (State.WithStatus, NodesOf); the Ring does not filter.
//     Liveness is not membership: a dead node stays in the ring and sloppy
//     quorum covers it.
//   - Rebuild the Ring when the State digest changes; a Ring is immutable and
//     safe for concurrent use.
//   - Use Moves between the old and the new Ring to plan ownership transfer.
//   - Decode ring state received from peers only with DecodeState (or the
//     msgpack CustomDecoder on *State), which bounds every size.
package ring
