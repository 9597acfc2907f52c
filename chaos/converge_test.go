package chaos

import (
	"reflect"
	"testing"
)

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
