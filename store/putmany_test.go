package store

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mnemo-kv/mnemo/version"
)

// TestPutManyAsSequentialPuts: a batch of writes, a key repeated among
// them, leaves the store as the same writes one by one would, and returns
// each write's object.
func TestPutManyAsSequentialPuts(t *testing.T) {
	for _, sync := range []SyncMode{SyncAlways, SyncNone} {
		t.Run(sync.String(), func(t *testing.T) {
			a := openMem(t, vfs.NewMem(), Options{Sync: sync})
			defer a.Close()
			b := openMem(t, vfs.NewMem(), Options{Sync: sync, NodeID: "n1"})
			defer b.Close()
			reqs := []PutRequest{
				{Key: []byte("x"), Value: []byte("1")},
				{Key: []byte("y"), Value: []byte("2"), SupersedeLocal: true},
				{Key: []byte("x"), Value: []byte("3"), SupersedeLocal: true},
				{Key: []byte("z"), Value: []byte("4")},
				{Key: []byte("z"), Tombstone: true, SupersedeLocal: true},
			}
			objs, _, durable, err := a.PutMany(append([]PutRequest(nil), reqs...))
			if err != nil {
				t.Fatal(err)
			}
			if err := durable(); err != nil {
				t.Fatal(err)
			}
			for i, r := range reqs {
				o, err := b.Put(r)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := values(objs[i]), values(o); len(got) != len(want) || len(o.Context) != len(objs[i].Context) {
					t.Fatalf("write %d: PutMany gave %v (context %v), Put %v (context %v)", i, got, objs[i].Context, want, o.Context)
				}
			}
			for _, k := range []string{"x", "y", "z"} {
				ga, errA := a.Get([]byte(k))
				gb, errB := b.Get([]byte(k))
				if !errors.Is(errA, errB) && errA != errB {
					t.Fatalf("%s: errors %v / %v", k, errA, errB)
				}
				if got, want := values(ga), values(gb); len(got) != len(want) || (len(got) > 0 && got[0] != want[0]) {
					t.Fatalf("%s: PutMany left %v, sequential puts %v", k, got, want)
				}
			}
			if got := values(mustGet(t, a, "x")); len(got) != 1 || got[0] != "3" {
				t.Fatalf("x after its second SET: %v, want [3]", got)
			}
			if ca, cb := a.Counts(), b.Counts(); ca != cb {
				t.Fatalf("counts %+v, sequential %+v", ca, cb)
			}
		})
	}
}

// TestPutManyRejectsBadRequests: one oversized value fails the batch and
// writes nothing.
func TestPutManyRejectsBadRequests(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{MaxValueSize: 8})
	defer s.Close()
	_, _, _, err := s.PutMany([]PutRequest{{Key: []byte("a"), Value: []byte("ok")}, {Key: []byte("b"), Value: make([]byte, 9)}})
	if !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("err = %v, want ErrValueTooLarge", err)
	}
	if _, err := s.Get([]byte("a")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a after a failed batch: %v, want not found", err)
	}
}

func mustGet(t *testing.T, s *Store, k string) *version.Object {
	t.Helper()
	o, err := s.Get([]byte(k))
	if err != nil {
		t.Fatal(err)
	}
	return o
}
