package proto

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/mnemo-kv/mnemo/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestKindNumbers pins every kind declared here to its number on the wire:
// kinds are only appended, never renumbered, or nodes of two releases stop
// understanding each other.
func TestKindNumbers(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind wire.Kind
		want wire.Kind
	}{
		{"Ping", KindPing, 1},
		{"Get", KindGet, 2},
		{"Put", KindPut, 3},
		{"Status", KindStatus, 4},
		{"CoordPut", KindCoordPut, 5},
		{"ReplicaPut", KindReplicaPut, 6},
		{"ReplicaGet", KindReplicaGet, 7},
		{"NodeInfo", KindNodeInfo, 8},
		{"ReplicaPutBatch", KindReplicaPutBatch, 9},
		{"ReplicaGetBatch", KindReplicaGetBatch, 10},
		{"HandoffBase", KindHandoffBase, 100},
		{"AntiEntropyBase", KindAntiEntropyBase, 120},
		{"TransferScan", KindTransferScan, 150},
		{"TransferSynced", KindTransferSynced, 151},
		{"OwnershipEvents", KindOwnershipEvents, 152},
		{"Leave", KindLeave, 180},
		{"Remove", KindRemove, 181},
	} {
		if tc.kind != tc.want {
			t.Errorf("Kind%s = %d, want %d", tc.name, tc.kind, tc.want)
		}
	}
}
