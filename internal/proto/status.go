package proto

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
	// Stats are named counters and gauges of the node's subsystems (hints
	// stored and replayed, read repairs, anti-entropy exchanges, ...), so a
	// subsystem can report without changing this message.
	Stats map[string]float64 `msgpack:"s,omitempty" json:"stats,omitempty"`
	// Detail holds structured per-subsystem reports (pending hints per
	// target, partitions last in sync, transfers), as JSON-ready values.
	Detail map[string]any `msgpack:"d,omitempty" json:"detail,omitempty"`
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
