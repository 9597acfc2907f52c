// Package proto defines the messages mnemo nodes and clients exchange over
// internal/wire: one Kind per request type, and the msgpack bodies.
//
// One RPC port serves clients (Get, Put, Status) and peers (replica reads
// and writes, forwarded puts, hints, anti-entropy, transfers). Peer kinds are
// not part of the client API and may change between releases; the client
// kinds change only by appending fields.
//
// NB: Kind and Mode are wire enums: only append, never renumber or reuse.
package proto

import (
	"fmt"

	"github.com/mnemo-kv/mnemo/internal/wire"
)

// Request kinds. Wire enum: only append.
const (
	// KindPing checks a node answers. Empty body both ways.
	KindPing wire.Kind = iota + 1
	// KindGet is a client read: GetRequest -> GetReply.
	KindGet
	// KindPut is a client write or delete: PutRequest -> PutReply.
	KindPut
	// KindStatus asks for the cluster as one node sees it: StatusRequest -> Status.
	KindStatus
	// KindCoordPut is a put forwarded to a home replica to version and
	// replicate: PutRequest (Forwarded set) -> PutReply.
	KindCoordPut
	// KindReplicaPut asks a replica to merge an object: ReplicaPut -> ReplicaPutReply.
	KindReplicaPut
	// KindReplicaGet asks a replica for its stored object: ReplicaGet -> ReplicaGetReply.
	KindReplicaGet
	// KindNodeInfo asks a peer for its local figures: empty -> NodeInfo.
	KindNodeInfo
	// KindReplicaPutBatch asks a replica to merge several objects in one
	// write: ReplicaPutBatch -> ReplicaPutBatchReply. A coordinator sends
	// one per replica for a pipeline of puts.
	KindReplicaPutBatch
	// KindReplicaGetBatch asks a replica for several keys' copies or
	// digests: ReplicaGetBatch -> ReplicaGetBatchReply. A coordinator sends
	// one per replica for a pipeline of reads.
	KindReplicaGetBatch
)

// Ranges of kinds owned by subsystems. Hinted handoff and anti-entropy
// define their kinds as Base+i and their bodies themselves; ownership
// transfer's kinds are below, with the admin kinds, since clients use one
// of them. Only append within a range.
const (
	// KindHandoffBase starts hinted handoff's kinds (100-119).
	KindHandoffBase wire.Kind = 100
	// KindAntiEntropyBase starts anti-entropy's kinds (120-149).
	KindAntiEntropyBase wire.Kind = 120
	// KindTransferBase starts ownership transfer's kinds (150-179).
	KindTransferBase wire.Kind = 150
	// KindAdminBase starts operator commands' kinds (180-199).
	KindAdminBase wire.Kind = 180
)

// Mode says how conflicts are resolved. Wire enum: only append.
type Mode uint8

const (
	// ModeDefault uses the cluster's --conflicts setting.
	ModeDefault Mode = iota
	// ModeSiblings keeps concurrent writes as siblings.
	ModeSiblings
	// ModeLWW resolves them last-write-wins: reads return the winner and a
	// write supersedes every version its versioning replica holds.
	ModeLWW
)

// String returns the flag spelling.
func (m Mode) String() string {
	switch m {
	case ModeSiblings:
		return "siblings"
	case ModeLWW:
		return "lww"
	}
	return "default"
}

// GetRequest reads a key.
type GetRequest struct {
	Key []byte `msgpack:"k"`
	// R replies to wait for; 0 means the node's default.
	R int `msgpack:"r,omitempty"`
	// N replicas; 0 means the node's default.
	N int `msgpack:"n,omitempty"`
	// Strict counts only home replicas toward R (Riak's PR): no fallbacks.
	Strict bool `msgpack:"s,omitempty"`
	// Local returns this node's stored copy: no coordination, no repair.
	Local bool `msgpack:"l,omitempty"`
	// Mode overrides the cluster's conflict mode for this read.
	Mode Mode `msgpack:"m,omitempty"`
	// TimeoutMs bounds the whole request at the coordinator; 0 means the
	// node's default.
	TimeoutMs int64 `msgpack:"t,omitempty"`
	// NoRepair skips read repair for this read (measurements, tests).
	NoRepair bool `msgpack:"nr,omitempty"`
	// Tombstones asks for tombstone siblings too (operators, anti-entropy
	// checks): a deleted key then comes back with Found false and the
	// tombstones listed.
	Tombstones bool `msgpack:"ts,omitempty"`
}

// Sibling is one concurrent value as clients see it.
type Sibling struct {
	Value     []byte `msgpack:"v"`
	Tombstone bool   `msgpack:"d,omitempty"`
	Timestamp int64  `msgpack:"t"`
	Actor     string `msgpack:"a"`
	Counter   uint64 `msgpack:"c"`
}

// GetReply answers a GetRequest.
type GetReply struct {
	// Found is false when no replica holds a live value (never written, or
	// deleted: a tombstone reads as not found).
	Found bool `msgpack:"f"`
	// Siblings are the live values (in lww mode, only the winner).
	Siblings []Sibling `msgpack:"s,omitempty"`
	// Context is the opaque causal context to send back with a put that
	// should supersede what was read.
	Context []byte `msgpack:"c,omitempty"`
	// Replies is how many replicas had answered when the read was answered.
	Replies int `msgpack:"r"`
}

// PutRequest writes or deletes a key.
type PutRequest struct {
	Key   []byte `msgpack:"k"`
	Value []byte `msgpack:"v,omitempty"`
	// Context from a previous read; the write supersedes what it covers.
	// Empty: the write becomes one more sibling (siblings mode).
	Context []byte `msgpack:"c,omitempty"`
	// Delete writes a tombstone. Without a context it supersedes every
	// version the versioning replica holds.
	Delete bool `msgpack:"d,omitempty"`
	// W acks to wait for; 0 means the node's default.
	W int `msgpack:"w,omitempty"`
	// N replicas; 0 means the node's default.
	N int `msgpack:"n,omitempty"`
	// Strict counts only home replicas toward W (Riak's PW): no fallbacks.
	Strict bool `msgpack:"s,omitempty"`
	// Mode overrides the cluster's conflict mode for this write.
	Mode Mode `msgpack:"m,omitempty"`
	// Overwrite supersedes every version the versioning replica holds, as
	// Redis SET does, whatever the mode.
	Overwrite bool `msgpack:"o,omitempty"`
	// TimeoutMs bounds the request at the coordinator; 0: node default.
	TimeoutMs int64 `msgpack:"t,omitempty"`
	// Forwarded is set by a coordinator that hands the put to a home
	// replica to version; the receiver versions it itself, never forwards.
	Forwarded bool `msgpack:"fw,omitempty"`
}

// PutReply answers a PutRequest.
type PutReply struct {
	// Context of the object after the write: a put with it supersedes this
	// write (and what it superseded).
	Context []byte `msgpack:"c"`
	// Acks is how many replicas had acknowledged when the put returned.
	Acks int `msgpack:"a"`
}

// QuorumDetail travels in wire.Error.Data with CodeQuorum.
type QuorumDetail struct {
	Op     string `msgpack:"o"`
	Acked  int    `msgpack:"a"`
	Asked  int    `msgpack:"k"`
	Needed int    `msgpack:"n"`
}

// ReplicaPut asks a replica to merge Object (version.Encode) into its copy
// of Key. HintFor, when set, names the home replica a fallback holds the
// object for (sloppy quorum): the receiver keeps a hint and hands the object
// off when that node is back.
type ReplicaPut struct {
	Key     []byte `msgpack:"k"`
	Object  []byte `msgpack:"o"`
	HintFor string `msgpack:"h,omitempty"`
}

// ReplicaPutReply acknowledges a ReplicaPut once the merge is durable.
type ReplicaPutReply struct {
	Changed bool `msgpack:"c"`
}

// ReplicaPutBatch is several ReplicaPuts for one replica, merged in one
// batch (one commit, one fsync). Items carry no HintFor: a fallback's
// objects go one by one.
type ReplicaPutBatch struct {
	Items []ReplicaPut `msgpack:"i"`
}

// ReplicaPutBatchReply acknowledges every item of a ReplicaPutBatch once
// the merge is durable; Changed counts the keys it changed.
type ReplicaPutBatchReply struct {
	Changed int `msgpack:"c"`
}

// ReplicaGet asks a replica for its copy of Key.
type ReplicaGet struct {
	Key []byte `msgpack:"k"`
	// Digest asks for the copy's digest (antientropy.LeafHash: the key and
	// its versions) instead of the object, as Cassandra's digest reads: a
	// coordinator reads the data from one replica and digests from the
	// others. A replica that does not know the field sends the object.
	Digest bool `msgpack:"d,omitempty"`
}

// ReplicaGetBatch is several ReplicaGets for one replica, all whole or
// all digests.
type ReplicaGetBatch struct {
	Keys   [][]byte `msgpack:"k"`
	Digest bool     `msgpack:"d,omitempty"`
}

// ReplicaGetBatchReply answers each key of a ReplicaGetBatch, in order.
type ReplicaGetBatchReply struct {
	Items []ReplicaGetReply `msgpack:"i"`
}

// ReplicaGetReply carries the replica's object (version.Encode), if any,
// or, for a digest read, its digest.
type ReplicaGetReply struct {
	Found  bool   `msgpack:"f"`
	Object []byte `msgpack:"o,omitempty"`
	// Digested says the reply carries Digest, not Object.
	Digested bool   `msgpack:"dd,omitempty"`
	Digest   uint64 `msgpack:"h,omitempty"`
}

// Admin and ownership kinds clients use. Wire enum: only append.
const (
	// KindLeave starts decommissioning the node that receives it: empty ->
	// empty. The node hands its partitions to their new owners, leaves the
	// ring and exits.
	KindLeave = KindAdminBase + iota
	// KindRemove takes a dead member out of the ring: RemoveRequest -> empty.
	KindRemove
	// KindKeyring lists or changes the gossip keys of the whole cluster:
	// the node that receives it applies KeyringRequest to itself and to
	// every other ring member (KindKeyringLocal) and answers KeyringReply,
	// one result per member. The request may carry a key: it travels only
	// over the RPC port and is never logged.
	// With security on, a client certificate may call it, like the other
	// admin kinds, and a node certificate may (node/tls.go's clientKinds);
	// plaintext callers only reach a transitional node.
	KindKeyring
	// KindKeyringLocal applies KeyringRequest to the receiving node only:
	// KeyringRequest -> KeyringNodeResult. Sent by the node serving
	// KindKeyring; a peer kind (a client certificate may not call it).
	KindKeyringLocal
)

// KeyringOp is what a KeyringRequest does. Wire enum: only append.
type KeyringOp uint8

const (
	// KeyringList changes nothing and reports the keys.
	KeyringList KeyringOp = iota + 1
	// KeyringInstall adds Key, for decryption only.
	KeyringInstall
	// KeyringUse makes the key named by Fingerprint the primary.
	KeyringUse
	// KeyringRemove drops the key named by Fingerprint (not the primary).
	KeyringRemove
)

// String returns the CLI's spelling.
func (o KeyringOp) String() string {
	switch o {
	case KeyringList:
		return "list"
	case KeyringInstall:
		return "install"
	case KeyringUse:
		return "use"
	case KeyringRemove:
		return "remove"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// KeyringRequest lists or changes gossip keys.
type KeyringRequest struct {
	Op KeyringOp `msgpack:"o"`
	// Key is the raw 32-byte key to install (KeyringInstall only).
	Key []byte `msgpack:"k,omitempty"`
	// Fingerprint names an installed key (use, remove): its gossip
	// fingerprint, or a unique prefix of at least 8 hex characters.
	Fingerprint string `msgpack:"f,omitempty"`
	// TimeoutMs bounds each member's answer; 0: the node's default.
	TimeoutMs int64 `msgpack:"t,omitempty"`
}

// KeyringNodeResult is one member's answer to a KeyringRequest: its keys
// after the operation (fingerprints only, never keys), or why it failed.
type KeyringNodeResult struct {
	Node string `msgpack:"n" json:"node"`
	// Error says why the operation failed on this member ("" if it did
	// not), including that it was not reached.
	Error string `msgpack:"e,omitempty" json:"error,omitempty"`
	// Mode is the member's security mode (disabled, transitional,
	// required).
	Mode string `msgpack:"m,omitempty" json:"mode,omitempty"`
	// Encrypting is whether it sends encrypted gossip.
	Encrypting bool `msgpack:"x,omitempty" json:"encrypting"`
	// Primary is the fingerprint of the key it encrypts with.
	Primary string `msgpack:"p,omitempty" json:"primary,omitempty"`
	// Keys are the fingerprints of its keys, the primary first.
	Keys []string `msgpack:"k,omitempty" json:"keys,omitempty"`
}

// KeyringReply answers KindKeyring: one result per ring member that is
// not removed, sorted by node id.
type KeyringReply struct {
	Nodes []KeyringNodeResult `msgpack:"r" json:"nodes"`
}

// Ownership transfer's kinds (package transfer serves them). Wire enum:
// only append.
const (
	// KindTransferScan reads a batch of a partition after a cursor, between
	// nodes (bodies in package transfer).
	KindTransferScan = KindTransferBase + iota
	// KindTransferSynced asks a node which partitions it holds completely,
	// between nodes (bodies in package transfer).
	KindTransferSynced
	// KindOwnershipEvents long-polls a node's partition-ownership events:
	// EventsRequest -> EventsReply.
	KindOwnershipEvents
)

// RemoveRequest names the member to remove.
type RemoveRequest struct {
	ID string `msgpack:"id"`
	// Force removes a member even though it is seen alive.
	Force bool `msgpack:"f,omitempty"`
}

// OwnershipEvent says a node gained or lost a partition.
type OwnershipEvent struct {
	Seq       uint64   `msgpack:"q" json:"seq"`
	Node      string   `msgpack:"n" json:"node"`
	Kind      string   `msgpack:"k" json:"kind"` // "gained" or "lost"
	Partition uint32   `msgpack:"p" json:"partition"`
	Peers     []string `msgpack:"r,omitempty" json:"peers,omitempty"` // gained: from whom; lost: to whom
	UnixMs    int64    `msgpack:"t" json:"unix_ms"`
}

// EventsRequest asks for events after sequence number After, waiting up to
// WaitMs for one when there are none.
type EventsRequest struct {
	After  uint64 `msgpack:"a"`
	WaitMs int64  `msgpack:"w"`
}

// EventsReply carries the events and the sequence to ask after next.
type EventsReply struct {
	Events []OwnershipEvent `msgpack:"e"`
	Next   uint64           `msgpack:"n"`
}
