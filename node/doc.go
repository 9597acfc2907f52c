// Package node is one running mnemo node: the wiring that starts every part
// of it in order, and the quorum coordinator that serves clients' reads and
// writes (Dynamo §4.5, "Execution of get() and put() operations").
//
// New opens the store (store/), binds the RPC, admin HTTP and RESP ports,
// starts the subsystems (hinted handoff, Merkle anti-entropy, ownership
// transfer) behind the narrow Cluster interfaces they own, serves, and joins
// gossip (gossip/). Close stops everything it started, in reverse, and waits
// for it. Settings come from package config; the admin port is
// internal/admin.
//
// The coordinator (coordinator.go, batch.go):
//
//   - A put is versioned by a live home replica: a node that is not one
//     forwards it (KindCoordPut). The home replica advances its dotted
//     version vector (version/), commits locally, and sends the
//     object to the other replicas of the preference list: home replicas,
//     or fallbacks with a hint for a dead home (sloppy quorum, §4.6). It
//     answers after W durable acks, its own counted only once its commit
//     is durable, so a restart can never reuse a dot.
//   - A get asks R replicas of its plan and answers at R: the coordinator
//     reads its own copy whole (else the first target's) and R-1 others,
//     chosen by the key's hash, for a digest of their versions; a digest
//     that matches no whole copy is read again whole before it counts. It
//     asks every replica while one is suspect (a stand-in, hints held for
//     it, a recent rejoin) and for ReadRepairChance of the reads
//     (readfanout.go); it asks one more at once for a replica that answers
//     with an error, and after ReadRetryAfter for those that are slow.
//     After answering, it keeps collecting until Timeout + ReadRepairWait
//     and repairs every replica asked that was stale or missing (read
//     repair).
//   - RESP pipelines of SETs and GETs are coordinated as batches (PutMany,
//     GetMany): one local commit and one message per replica. Concurrent
//     single SETs of different RESP connections are batched the same way
//     by a combiner (combine.go), led by a caller's goroutine: no goroutine
//     is added and a lone SET waits for nothing.
//
// The ring view (ring/) is rebuilt from the ring-state CRDT that gossip
// carries, and published atomically; ringHooks, rejoinHooks and
// statsSources are set before any server serves, because the servers'
// handlers and gossip's goroutines read them without a lock.
//
// Deletes are tombstones reaped after the tombstone grace (tombstones.go); a
// node away longer than that refuses to start, or rejoins empty, rather than
// bring deleted keys back (docs/design.md, "Deletes").
package node
