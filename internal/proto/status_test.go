package proto

import (
	"reflect"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/internal/wire"
)

// fullInfo is a NodeInfo with every subsystem report filled.
func fullInfo() NodeInfo {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	return NodeInfo{
		ID: "node-1", Epoch: "e1", Version: "v", StartedUnix: 7, Keys: 8, Tombstones: 9,
		ReadRepairs: 3,
		AntiEntropy: AntiEntropyStatus{
			On: true, Exchanges: 1, Repairs: 2, Failures: 3, KeysSent: 4, KeysReceived: 5,
			KeysChanged: 6, BytesSent: 7, BytesReceived: 8, TreesBuilt: 2, Partitions: 2,
			TreesVerified: true, TreesWrong: 1, RejoinPending: 1,
			Roots: map[uint32]uint64{0: 1<<64 - 1, 1: 16},
			Pairs: []AntiEntropyPair{{Partition: 0, Peer: "node-2", LastInSync: at}, {Partition: 1, Peer: "node-2"}},
		},
		Handoff: HandoffStatus{
			On: true, Stored: 2, Pending: map[string]int64{"node-3": 2}, Replayed: 1, Expired: 1,
			Batches: 1, BytesSent: 100, Superseded: 1, Rejected: 1, Failures: 1, CopiesDropped: 1, Replaying: 1,
			LastReplay: &HintReplay{Target: "node-3", Start: at, DurationMs: 1.5, Replayed: 1, Err: "x"},
		},
		Ownership: OwnershipStatus{
			PartitionsHeld: 2, PartitionsSyncing: 1, KeysReceived: 10, BytesReceived: 1000,
			Transfers: []TransferProgress{{Partition: 1, Source: "node-2", Keys: 5, Started: at}},
			Events:    []OwnershipEvent{{Seq: 1, Node: "node-1", Kind: "gained", Partition: 1, Peers: []string{"node-2"}, UnixMs: 1}},
		},
	}
}

// TestNodeInfoRoundTrip: every typed field survives the wire.
func TestNodeInfoRoundTrip(t *testing.T) {
	in := fullInfo()
	b, err := wire.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out NodeInfo
	if err := wire.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	// time.Time decodes in the local zone; compare instants.
	for _, p := range [][2]*time.Time{
		{&in.AntiEntropy.Pairs[0].LastInSync, &out.AntiEntropy.Pairs[0].LastInSync},
		{&in.Handoff.LastReplay.Start, &out.Handoff.LastReplay.Start},
		{&in.Ownership.Transfers[0].Started, &out.Ownership.Transfers[0].Started},
	} {
		if !p[0].Equal(*p[1]) {
			t.Errorf("time %v came back as %v", *p[0], *p[1])
		}
		*p[1] = *p[0]
	}
	if !out.AntiEntropy.Pairs[1].LastInSync.IsZero() {
		t.Errorf("never in sync came back as %v", out.AntiEntropy.Pairs[1].LastInSync)
	}
	out.AntiEntropy.Pairs[1].LastInSync = time.Time{}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

// oldNodeInfo is NodeInfo as releases before the typed reports sent it:
// untyped maps under "s" and "d".
type oldNodeInfo struct {
	ID          string             `msgpack:"id"`
	Epoch       string             `msgpack:"ep"`
	Version     string             `msgpack:"v"`
	StartedUnix int64              `msgpack:"st"`
	Keys        int64              `msgpack:"k"`
	Tombstones  int64              `msgpack:"tb"`
	Stats       map[string]float64 `msgpack:"s,omitempty"`
	Detail      map[string]any     `msgpack:"d,omitempty"`
}

// TestNodeInfoMixedVersions: a member of the other version decodes, with
// its common fields and without the other's subsystem figures.
func TestNodeInfoMixedVersions(t *testing.T) {
	old := oldNodeInfo{ID: "node-1", Epoch: "e1", Version: "old", StartedUnix: 7, Keys: 8, Tombstones: 9,
		Stats:  map[string]float64{"read_repairs": 3, "ae_exchanges": 4, "hints_stored": 1},
		Detail: map[string]any{"ae_roots": map[string]string{"0": "ff"}, "hints_pending": map[string]int64{"node-2": 1}}}
	b, err := wire.Marshal(&old)
	if err != nil {
		t.Fatal(err)
	}
	var got NodeInfo
	if err := wire.Unmarshal(b, &got); err != nil {
		t.Fatalf("new node reading an old one: %v", err)
	}
	if want := (NodeInfo{ID: "node-1", Epoch: "e1", Version: "old", StartedUnix: 7, Keys: 8, Tombstones: 9}); !reflect.DeepEqual(got, want) {
		t.Errorf("new node reading an old one: %+v, want %+v", got, want)
	}

	in := fullInfo()
	if b, err = wire.Marshal(&in); err != nil {
		t.Fatal(err)
	}
	var gotOld oldNodeInfo
	if err := wire.Unmarshal(b, &gotOld); err != nil {
		t.Fatalf("old node reading a new one: %v", err)
	}
	if want := (oldNodeInfo{ID: "node-1", Epoch: "e1", Version: "v", StartedUnix: 7, Keys: 8, Tombstones: 9}); !reflect.DeepEqual(gotOld, want) {
		t.Errorf("old node reading a new one: %+v, want %+v", gotOld, want)
	}
}

// TestCounters: the listing names each figure once, and shows a
// subsystem's counters only when it runs.
func TestCounters(t *testing.T) {
	in := fullInfo()
	seen := map[string]float64{}
	for _, c := range in.Counters() {
		if _, dup := seen[c.Name]; dup {
			t.Errorf("%s listed twice", c.Name)
		}
		seen[c.Name] = c.Value
	}
	for name, want := range map[string]float64{"read_repairs": 3, "ae_exchanges": 1, "ae_bytes_received": 8,
		"ae_trees_verified": 1, "hints_stored": 2, "hints_failures": 1, "partitions_syncing": 1, "transfer_bytes_received": 1000} {
		if seen[name] != want {
			t.Errorf("%s = %v, want %v", name, seen[name], want)
		}
	}
	off := NodeInfo{ReadRepairs: 1}
	for _, c := range off.Counters() {
		if c.Name[:3] == "ae_" || c.Name[:6] == "hints_" {
			t.Errorf("%s listed for a node without anti-entropy and handoff", c.Name)
		}
	}
}
