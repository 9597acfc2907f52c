package chaos

import (
	"reflect"
	"testing"
)

// TestParseRoots: the Merkle roots the convergence criterion reads from
// status (node/subsystems.go writes them).
func TestParseRoots(t *testing.T) {
	for _, tc := range []struct {
		name   string
		detail map[string]any
		want   map[int]uint64
	}{
		{"absent", map[string]any{}, nil},
		{"not a map", map[string]any{"ae_roots": "x"}, nil},
		{"hex text", map[string]any{"ae_roots": map[string]any{"0": "0", "7": "10", "9": "ffffffffffffffff"}},
			map[int]uint64{0: 0, 7: 16, 9: 1<<64 - 1}},
		{"bad entries skipped", map[string]any{"ae_roots": map[string]any{"x": "1", "4": "zz", "5": "a", "6": 3}},
			map[int]uint64{5: 10}},
	} {
		if got := parseRoots(tc.detail); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestHomeReplicas: the checker's ring gives each key N distinct home
// replicas, the same for the same key.
func TestHomeReplicas(t *testing.T) {
	v, err := newClusterView(nil, []string{"node-1", "node-2", "node-3", "node-4", "node-5"}, make([]string, 5), 256, 3)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, 5)
	for _, k := range []string{"set-0", "set-1", "reg-000", "reg-001", "del-0-000001", "x"} {
		h := v.home(k)
		if len(h) != 3 || h[0] == h[1] || h[1] == h[2] || h[0] == h[2] || !reflect.DeepEqual(h, v.home(k)) {
			t.Fatalf("%s: home %v", k, h)
		}
		for _, i := range h {
			counts[i]++
		}
	}
}
