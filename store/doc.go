// Package store keeps one node's replicas in Pebble: versioned objects
// (siblings, tombstones and their causal context, see package version),
// plus small keyspaces for hints and node metadata.
//
// It implements the local half of Dynamo §4.4 (data versioning): Put
// versions a write with this node's actor, Merge joins an object that
// arrived from elsewhere (replication, hinted handoff, read repair,
// anti-entropy, ownership transfer). Both are atomic per key: a striped lock
// serializes read-modify-write of one key, so two writes can never both read
// the same old object and lose one another.
//
// Key layout (everything scanned together is contiguous):
//
//	'd' | partition (2 bytes BE) | segment (2 bytes BE) | user key  -> object
//	'a' | space (1 byte) | caller's key                             -> caller's bytes
//	'm' | name                                                       -> metadata
//
// Partition and segment come from the key's 64-bit hash (ring.KeyHash), so a
// partition is one range and an anti-entropy segment one sub-range of it.
// Both counts are fixed when the data directory is created and checked on
// every open.
//
// Locks are striped by the top 12 bits of the key hash, so the stripes of a
// partition are contiguous: LockPartition takes just those, which lets a
// caller (the anti-entropy tree build) read a partition with no write to it
// in flight, without stopping the rest of the node.
//
// Durability is Options.Sync: SyncAlways (default) fsyncs the WAL before a
// write returns, sharing one fsync among concurrent writes (Pebble's commit
// pipeline is a group commit), so an acknowledged write survives kill -9 and
// power loss. SyncBatch and SyncNone trade that for speed; see SyncMode.
//
// Every write reads the key first (to version or merge it). The object
// cache (cache.go) keeps the versions of recent keys, without values, which
// is all an overwrite, a merge of an object that covers the stored one, the
// summary and a digest read need; the writes that keep a sibling they do
// not bring read the whole object from Pebble. PutMany and MergeMany write
// many keys in one batch: one commit and, with SyncAlways, one fsync.
//
// The caller must Close the store; Close waits for the background work.
package store
