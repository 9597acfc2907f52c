package proto

import "time"

// StatusRequest asks a node for the cluster as it sees it.
type StatusRequest struct {
	// TimeoutMs bounds the fan-out to peers; 0: node default.
	TimeoutMs int64 `msgpack:"t,omitempty"`
}

// NodeInfo is one node's own figures, answered to KindNodeInfo.
type NodeInfo struct {
	ID          string `msgpack:"id" json:"id"`
	Epoch       string `msgpack:"ep" json:"epoch"`
	Version     string `msgpack:"v" json:"version"`
	StartedUnix int64  `msgpack:"st" json:"started_unix"`
	// Keys and Tombstones held locally (exact: the store keeps them with
	// the data).
	Keys       int64 `msgpack:"k" json:"keys"`
	Tombstones int64 `msgpack:"tb" json:"tombstones"`
	// ReadRepairs counts replicas this node repaired as a read's
	// coordinator.
	ReadRepairs uint64 `msgpack:"rr,omitempty" json:"read_repairs"`
	// One report per subsystem; a subsystem that is off reports its zero
	// value (On false).
	//
	// NB: msgpack keys "s" and "d" carried the untyped Stats and Detail
	// maps of earlier releases: never reuse them. Those releases and this
	// one ignore each other's fields, so in a mixed cluster a member of
	// the other version shows no subsystem figures, and nothing fails.
	AntiEntropy AntiEntropyStatus `msgpack:"ae" json:"anti_entropy"`
	Handoff     HandoffStatus     `msgpack:"hh" json:"handoff"`
	Ownership   OwnershipStatus   `msgpack:"ow" json:"ownership"`
}

// MemberStatus is one ring member as the answering node sees it.
type MemberStatus struct {
	ID         string `msgpack:"id" json:"id"`
	Zone       string `msgpack:"z,omitempty" json:"zone,omitempty"`
	Ring       string `msgpack:"r" json:"ring"`     // joining, active, leaving, removed
	Liveness   string `msgpack:"l" json:"liveness"` // alive, suspect, dead, left, unknown
	RPCAddr    string `msgpack:"ra" json:"rpc_addr"`
	HTTPAddr   string `msgpack:"ha,omitempty" json:"http_addr,omitempty"`
	GossipAddr string `msgpack:"ga,omitempty" json:"gossip_addr,omitempty"`
	RESPAddr   string `msgpack:"rs,omitempty" json:"resp_addr,omitempty"`
	// Owned is how many partitions it is a home replica of; Primary how
	// many it heads the preference list of.
	Owned   int `msgpack:"o" json:"owned_partitions"`
	Primary int `msgpack:"p" json:"primary_partitions"`
	// Info is the member's own report; nil when it did not answer.
	Info  *NodeInfo `msgpack:"i,omitempty" json:"info,omitempty"`
	Error string    `msgpack:"e,omitempty" json:"error,omitempty"`
}

// Status answers KindStatus.
type Status struct {
	Node       string         `msgpack:"n" json:"node"`
	Partitions int            `msgpack:"q" json:"partitions"`
	N          int            `msgpack:"dn" json:"n"`
	R          int            `msgpack:"dr" json:"r"`
	W          int            `msgpack:"dw" json:"w"`
	Conflicts  string         `msgpack:"cf" json:"conflicts"`
	RingDigest uint64         `msgpack:"rd" json:"ring_digest"`
	Members    []MemberStatus `msgpack:"m" json:"members"`
}

// AntiEntropyStatus is anti-entropy's report (antientropy.Stats). Counters
// run since the process started.
type AntiEntropyStatus struct {
	// On is whether anti-entropy runs on the node.
	On bool `msgpack:"on" json:"on"`
	// Exchanges counts partition exchanges the node initiated and
	// completed; Repairs those that found different roots; Failures those
	// that failed.
	Exchanges uint64 `msgpack:"x" json:"exchanges"`
	Repairs   uint64 `msgpack:"r" json:"repairs"`
	Failures  uint64 `msgpack:"f" json:"failures"`
	// KeysSent and KeysReceived count objects sent and received, in
	// either role; KeysChanged the received ones that changed the store.
	KeysSent     uint64 `msgpack:"ks" json:"keys_sent"`
	KeysReceived uint64 `msgpack:"kr" json:"keys_received"`
	KeysChanged  uint64 `msgpack:"kc" json:"keys_changed"`
	// BytesSent and BytesReceived count anti-entropy messages as sent on
	// the network, frame headers included.
	BytesSent     uint64 `msgpack:"bs" json:"bytes_sent"`
	BytesReceived uint64 `msgpack:"br" json:"bytes_received"`
	// TreesBuilt is how many of Partitions have their Merkle tree built.
	TreesBuilt int `msgpack:"tb" json:"trees_built"`
	Partitions int `msgpack:"p" json:"partitions"`
	// TreesVerified says the trees were checked against the data (one
	// interval after start-up); TreesWrong counts partitions that check
	// corrected (0 but for a bug).
	TreesVerified bool `msgpack:"tv,omitempty" json:"trees_verified"`
	TreesWrong    int  `msgpack:"tw,omitempty" json:"trees_wrong"`
	// RejoinPending counts partitions queued for an exchange by a rejoin.
	RejoinPending int `msgpack:"rp,omitempty" json:"rejoin_pending"`
	// Roots is the Merkle root per partition, for built trees only.
	Roots map[uint32]uint64 `msgpack:"rt,omitempty" json:"roots,omitempty"`
	// Pairs is, per partition and replica it was compared with, when the
	// two were last seen in sync; sorted by partition then peer.
	Pairs []AntiEntropyPair `msgpack:"pr,omitempty" json:"pairs,omitempty"`
}

// AntiEntropyPair is one partition shared with one peer.
type AntiEntropyPair struct {
	Partition uint32 `msgpack:"p" json:"partition"`
	Peer      string `msgpack:"n" json:"peer"`
	// LastInSync is when their roots were last seen equal; zero: never.
	LastInSync time.Time `msgpack:"s,omitempty" json:"last_in_sync,omitzero"`
}

// HandoffStatus is hinted handoff's report (hintedhandoff.Stats).
// Counters run since the process started.
type HandoffStatus struct {
	// On is whether hinted handoff runs on the node.
	On bool `msgpack:"on" json:"on"`
	// Stored is the number of hints held now; Pending the same per target
	// (targets with none absent).
	Stored  int64            `msgpack:"s" json:"stored"`
	Pending map[string]int64 `msgpack:"p,omitempty" json:"pending,omitempty"`
	// Replayed counts hinted objects their target acknowledged; Expired
	// hints dropped unsent; Batches and BytesSent the acknowledged batches
	// and their payload bytes.
	Replayed  uint64 `msgpack:"r" json:"replayed"`
	Expired   uint64 `msgpack:"e" json:"expired"`
	Batches   uint64 `msgpack:"b" json:"batches"`
	BytesSent uint64 `msgpack:"bs" json:"bytes_sent"`
	// Superseded counts delivered hints kept because a newer write came
	// in meanwhile; Rejected hints the target refused; Failures replays
	// stopped by an error; CopiesDropped fallback copies deleted after
	// delivery.
	Superseded    uint64 `msgpack:"sp,omitempty" json:"superseded"`
	Rejected      uint64 `msgpack:"rj,omitempty" json:"rejected"`
	Failures      uint64 `msgpack:"f" json:"failures"`
	CopiesDropped uint64 `msgpack:"cd" json:"copies_dropped"`
	// Replaying is the number of replays running now.
	Replaying int `msgpack:"rn,omitempty" json:"replaying"`
	// LastReplay is the most recent finished replay; nil before the first.
	LastReplay *HintReplay `msgpack:"l,omitempty" json:"last_replay,omitempty"`
}

// HintReplay is one finished replay of hints to a target.
type HintReplay struct {
	Target     string    `msgpack:"t" json:"target"`
	Start      time.Time `msgpack:"s" json:"start"`
	DurationMs float64   `msgpack:"d" json:"duration_ms"`
	Replayed   int       `msgpack:"r" json:"replayed"`
	Expired    int       `msgpack:"e" json:"expired"`
	// Err is what stopped it early; empty when it finished.
	Err string `msgpack:"x,omitempty" json:"error,omitempty"`
}

// OwnershipStatus is ownership transfer's report.
type OwnershipStatus struct {
	// PartitionsHeld is how many partitions the node is a home replica
	// of; PartitionsSyncing those of them still being pulled.
	PartitionsHeld    int `msgpack:"h" json:"partitions_held"`
	PartitionsSyncing int `msgpack:"s" json:"partitions_syncing"`
	// KeysReceived and BytesReceived count what transfers brought in.
	KeysReceived  int64 `msgpack:"kr" json:"keys_received"`
	BytesReceived int64 `msgpack:"br" json:"bytes_received"`
	// Transfers are the pulls running now.
	Transfers []TransferProgress `msgpack:"t,omitempty" json:"transfers,omitempty"`
	// Events are the latest ownership events (at most 20).
	Events []OwnershipEvent `msgpack:"e,omitempty" json:"events,omitempty"`
}

// TransferProgress is one partition being pulled from a source.
type TransferProgress struct {
	Partition uint32    `msgpack:"p" json:"partition"`
	Source    string    `msgpack:"s" json:"source"`
	Keys      int64     `msgpack:"k" json:"keys"`
	Started   time.Time `msgpack:"t" json:"started"`
}

// Counter is one named figure of a NodeInfo, for listings (the status
// command, chaos reports).
type Counter struct {
	Name  string
	Value float64
}

// Counters lists the node's counters and gauges by their display names,
// in a fixed order. Code that needs one figure reads its field.
func (i *NodeInfo) Counters() []Counter {
	ae, hh, ow := &i.AntiEntropy, &i.Handoff, &i.Ownership
	c := []Counter{{"read_repairs", float64(i.ReadRepairs)}}
	if ae.On {
		c = append(c,
			Counter{"ae_exchanges", float64(ae.Exchanges)},
			Counter{"ae_repairs", float64(ae.Repairs)},
			Counter{"ae_failures", float64(ae.Failures)},
			Counter{"ae_keys_sent", float64(ae.KeysSent)},
			Counter{"ae_keys_received", float64(ae.KeysReceived)},
			Counter{"ae_keys_changed", float64(ae.KeysChanged)},
			Counter{"ae_bytes_sent", float64(ae.BytesSent)},
			Counter{"ae_bytes_received", float64(ae.BytesReceived)},
			Counter{"ae_trees_built", float64(ae.TreesBuilt)},
		)
		if ae.TreesVerified {
			c = append(c, Counter{"ae_trees_verified", 1}, Counter{"ae_trees_wrong", float64(ae.TreesWrong)})
		}
	}
	if hh.On {
		c = append(c,
			Counter{"hints_stored", float64(hh.Stored)},
			Counter{"hints_replayed", float64(hh.Replayed)},
			Counter{"hints_expired", float64(hh.Expired)},
			Counter{"hints_batches", float64(hh.Batches)},
			Counter{"hints_bytes_sent", float64(hh.BytesSent)},
			Counter{"hints_copies_dropped", float64(hh.CopiesDropped)},
			Counter{"hints_failures", float64(hh.Failures)},
		)
	}
	return append(c,
		Counter{"partitions_held", float64(ow.PartitionsHeld)},
		Counter{"partitions_syncing", float64(ow.PartitionsSyncing)},
		Counter{"transfer_keys_received", float64(ow.KeysReceived)},
		Counter{"transfer_bytes_received", float64(ow.BytesReceived)},
	)
}
