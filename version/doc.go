// Package version implements mnemo's causality tracking: dotted version
// vectors over a per-key object that holds concurrent siblings.
//
// The model is Riak 2.0's (Preguiça, Baquero, Almeida et al., "Dotted
// Version Vectors: Logical Clocks for Optimistic Replication", and "Scalable
// and Accurate Causality Tracking for Eventually Consistent Stores"). Every
// write a home replica versions gets a Dot: the replica's Actor and the next
// counter of that actor. An Object is
//
//   - its Siblings: the values (or tombstones) no write has superseded yet,
//     each carrying the dot of the write that made it, and
//   - its Context: a version vector covering every dot the object has seen,
//     whether still present as a sibling or already superseded.
//
// A client reads an object, gets its Context back opaquely, and writes with
// it: the write removes exactly the siblings whose dots that context covers
// (what the client saw) and keeps any sibling written concurrently. A write
// without a context supersedes nothing and becomes one more sibling (Riak
// with allow_mult=true). Because each write gets one new dot rather than a
// whole new vector entry per client, the number of siblings is bounded by the
// number of truly concurrent writes, not by the number of clients (no
// "sibling explosion").
//
// Merge is the join of two replicas' objects: a sibling survives if the other
// side holds it too, or the other side's context does not cover its dot (the
// other side has not seen it, so it cannot have superseded it). Merge is
// commutative, associative and idempotent, which is what lets hinted handoff,
// read repair and anti-entropy deliver objects in any order, any number of
// times (property-tested in merge_test.go).
//
// Actors are "node-id#epoch": the epoch changes whenever a node starts on an
// empty data directory, so a node that lost its disk never reuses a counter
// it handed out before (the cause of Riak's kv679 lost writes).
//
// Last-write-wins is a way of reading and writing, not a different merge:
// the stored object keeps its siblings under the same join, Winner picks one
// deterministically (highest timestamp, then actor, then counter), and an lww
// write supersedes every sibling the versioning replica holds. Merging then
// dropping losers is not associative under clock skew, so we do not do it.
//
// The package is pure: no goroutines, clocks or I/O. Callers pass timestamps.
package version
