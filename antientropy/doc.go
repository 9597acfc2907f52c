// Package antientropy keeps the home replicas of every partition equal in
// the background: one Merkle tree per partition, kept current on every
// change, and an exchange protocol that moves only what differs. It is
// Dynamo §4.7 ("Handling permanent failures: Replica synchronization"),
// done as Riak 3's tictac active anti-entropy: the trees are XOR sums, so
// they are updated in O(1) per write and never rebuilt for an exchange.
//
// # Trees
//
// A key's leaf hash is a hash of the key and of its version digest (the
// object's causal context and each sibling's dot and tombstone flag; a dot
// names one write, so values need not be hashed). A segment's hash is the
// XOR of its keys' leaf hashes, a branch's the XOR of its segments', the
// root the XOR of the branches'. Segments are the store's (1024 per
// partition by default, each a contiguous key range), grouped into
// branches of equal size (32 x 32 for 1024). Trees is the store's
// Observer: each committed write, merge or delete toggles the key's old and
// new leaf hash. The store keeps the same XOR per segment with the data
// (store.Options.Digest = LeafHash: the cells of its summary, committed in
// each write's batch), so at start-up New restores every partition's tree
// from the store's summary, under store.LockPartition, in milliseconds
// instead of scanning the data (4.6 s of CPU for a million keys, spent
// while the restarted node caught up and served). Until a partition is
// built, changes to it are ignored (its restore sees them) and exchanges
// skip it. One Interval after start-up the trees are verified against the
// data, paced (Trees.Verify: the store recomputes each partition's summary
// from its objects and corrects it; a tree that differs is replaced and
// the node logs an error), the one full scan anti-entropy makes. Key
// descriptors in exchanges hash stored encodings with LeafHashEncoded,
// which walks the msgpack without decoding or copying anything.
//
// # Exchange
//
// One node, the initiator, compares a batch of partitions with one peer
// (ExchangeNow). Four request kinds, one round trip each:
//
//  1. Roots: every partition's 8-byte root in one message; equal roots end
//     the exchange of that partition. A full round in sync costs one
//     message of about 9 bytes per partition one way and 1 back (about
//     2.4 KiB for Q=256).
//  2. Segments: the initiator's 8-byte branch hashes of a differing
//     partition; the peer returns a bitmap of the differing branches and,
//     under them, its segment hashes shortened to 3-byte tags. The
//     initiator finds the differing segments.
//  3. Keys: for a chunk of differing segments, one 4-byte descriptor per
//     key the initiator holds there: a 2-byte tag of the key and a 2-byte
//     tag of its version. The peer, from a scan of the same segments,
//     returns the objects the initiator lacks, a bitmap of the
//     descriptors it lacks or holds another version of, and a bitmap of
//     those it holds another version of (same key tag). Segments the
//     peer holds nothing of (tag 0) are not listed: the initiator pushes
//     all it has there.
//  4. Push: the objects the peer asked for, in batches. For the keys it
//     holds another version of, it merges, and returns its merge when the
//     pushed version lacked something, so concurrent versions cost one
//     object each way and an older one is never sent.
//
// Both sides merge what they receive with store.MergeMany: siblings
// survive, tombstones travel, and a repair is itself a change the trees
// record. The roots of every 8 partitions repaired are compared once more;
// a partition still different (writes going on, a tag collision, a reply
// cut at its size cap) gets another pass, with a new salt. Two partitions
// are worked on at once, so that one side's scan overlaps the other's.
// Scans read raw encodings and decode only the objects sent.
//
// Tags are salted with a random salt per pass: equal hashes always give
// equal tags, and unequal ones collide rarely (2^-24 for segments, 2^-32
// for keys, 2^-16 for two versions of one key) and for that pass only, so
// a collision costs a pass and cannot hide a difference for good.
//
// Messages are hand-encoded (varints, fixed-width hashes and tags, see
// codec.go) and every body of 256 bytes or more is zstd-compressed when
// that makes it smaller. That matters for objects: actor ids, contexts
// and timestamp prefixes repeat from one object to the next and compress
// away, so a repaired key costs about 6 bytes more than its key and value
// (measured with incompressible values). With the bench's density (about
// 4 keys per segment) and 10% of the keys missing, an exchange sends about
// 1.3 bytes per missing byte in all: 1.06 for the objects, the rest for
// segment tags and key descriptors. Decoders bound every count and length
// by the bytes present and by fixed limits (a body decompresses to at most
// 16 MiB), and answer bad input with a *wire.Error of CodeBadRequest,
// never a panic.
//
// # Schedule
//
// NodeRejoined(id) (gossip saw id alive again) queues an immediate
// exchange of every partition shared with id, retried every RetryDelay
// while id's trees are still being built (or a call failed), for up to
// one Interval. Only one replica repairs a partition on a rejoined node:
// the first alive home replica other than it, in ring order; the others
// check theirs FollowUp (5 s) after their own exchanges with it last found
// trees unbuilt (nobody could repair before), which costs a root
// comparison when the designated replica did its work and repairs what it
// could not reach (it may itself have been cut off from the rejoined
// node). Otherwise each pair of home replicas exchanges each partition
// once per Interval: the node with the lower id initiates, and the other
// does only if the pair has not been exchanged for two Intervals.
//
// A node takes part in one repair of a partition at a time (lease.go): a
// roots request that finds a difference gets a repair lease on the
// partition from the responder, or statusBusy while another exchange
// holds one, and a node does not initiate on a partition another exchange
// is repairing on it. The exchange that backs off comes back later and
// most likely finds the partition equal. So a rejoined node, which its
// designated repairer, the follow-ups and its own pulls all want to
// repair, receives each missing object once, not up to three times.
//
// The scheduler runs one exchange at a time (two partitions in flight),
// each request within CallTimeout, and every node sends at most Rate bytes
// per second of anti-entropy (a token bucket over both roles). Foreground
// requests keep priority over the CPU too (pace.go): anti-entropy's work
// (the verification scan, scans, merges of 256 objects at a time) runs in
// short turns, one turn at a time per node, and while the node serves
// foreground requests (Config.Busy) takes at most CPUShare of one CPU,
// measured in wall time so that it backs off when the machine is busy.
//
// # What the caller does
//
//	trees := antientropy.NewTrees(partitions, segments)
//	st, _ := store.Open(store.Options{..., Observer: trees})
//	ae, _ := antientropy.New(antientropy.Config{Store: st, Trees: trees, Cluster: c, ...})
//	for _, k := range ae.Kinds() { route k to ae.Handle }
//	on gossip NodeRejoined(id): ae.NodeRejoined(id)
//	on shutdown: ae.Close(), stop serving RPC, then st.Close()
//
// A node restarted on an empty data directory has empty trees; the
// rejoin trigger on its peers refills every partition it owns.
package antientropy
