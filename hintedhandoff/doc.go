// Package hintedhandoff keeps the writes a fallback replica accepted for a
// dead home replica and hands them to that replica when it is back: hinted
// handoff, Dynamo §4.6 ("Handling Temporary Failures: Hinted Handoff").
//
// # What it does
//
// Under sloppy quorum (docs/design.md, "Coordinator") a write whose home replica
// is dead goes to the next live node of the preference list, a fallback. The
// fallback stores the object like any other and calls Add: a hint naming the
// home replica (the target) and holding the whole versioned object,
// tombstones included. Hints are durable: they live in the store's
// store.AuxHints keyspace, in the same Pebble database and WAL as the data,
// and survive a restart of the fallback.
//
// There is one hint per (target, key): a second Add for the same key joins
// the objects (version.Merge), so hints grow with the keys written while the
// target was down, not with the writes.
//
// When the target is alive again its hints are replayed: read in key order,
// sent in batches (Config.BatchSize objects or Config.BatchBytes, whichever
// comes first) with KindHintBatch, throttled by one token bucket
// (Config.Rate objects per second for the whole node), and merged by the
// target with store.MergeMany, which joins versions: a replay never
// overwrites a newer value, and concurrent versions become siblings. The
// target acknowledges once the batch is durable. A hint is deleted only after
// its batch was acknowledged, and only if it did not change while the batch
// was in flight (compare-and-delete under the key's lock): a write hinted
// meanwhile stays and goes in the next pass.
//
// A replay that fails (the target died again, a timeout) stops; its hints are
// still there, and the next trigger continues. There is at most one replay
// per target at a time, and at most Config.MaxReplays at once. A hint the
// target refuses as invalid (say, a value over its limit) does not block the
// others: the batch is resent one hint at a time, and the refused hint is
// kept but not resent until it changes, expires or the target rejoins.
//
// After a delivery, a fallback that is not a home replica of the key (the
// usual case) and holds no hint for the key for another target deletes its
// copy with store.DeleteIf, only if the stored object is covered by what was
// delivered, so a newer write that reached the fallback meanwhile is kept.
//
// Hints expire Config.Window (default 3 h, --hint-window) after they were
// created (their first write; a write merged into a hint already past the
// window starts a new one): replays and a periodic sweep drop them and
// count them. Anti-entropy (Merkle exchange, docs/design.md) repairs whatever an
// expired hint held. An expired hint's local copy is kept: it may be the only
// copy of an acknowledged write.
//
// # Key layout
//
// In store.AuxHints:
//
//	target node id | 0x00 | user key  ->  format (1 byte) | created (8 bytes BE, Unix ns) | version.Encode(object)
//
// so a target's hints are one contiguous range. Node ids never contain 0x00
// (Add rejects them).
//
// # What the caller (the node) must do
//
//   - Create one Handoff per node with New, on the node's store, before
//     serving RPC; register Kinds with Handle on the RPC server.
//   - Call Add whenever this node stores an object as a fallback for a dead
//     home replica (after the store's Merge or Put, which makes the object
//     durable first), and wire gossip's NodeRejoined to NodeRejoined.
//   - Close the Handoff before the store: Close stops the replays, waits for
//     them and for Add and Handle calls in progress, and after it neither
//     touches the store (Add returns ErrClosed, Handle CodeUnavailable).
package hintedhandoff
