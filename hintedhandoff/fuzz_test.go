package hintedhandoff

import (
	"context"
	"testing"

	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

// FuzzHandleBatch feeds the receiving side arbitrary bytes: it must answer
// with a reply or a *wire.Error, never panic, and merge only what it
// acknowledged.
func FuzzHandleBatch(f *testing.F) {
	c := newTestCluster(f)
	b := c.addWith("b", testConfig(f), func(o *store.Options) { o.MaxValueSize = 1 << 10 })

	o1 := obj(nil, "x#1", "v1")
	good := func(target ring.NodeID, items ...hintItem) []byte {
		p, err := wire.Marshal(&hintBatch{For: string(target), Items: items})
		if err != nil {
			f.Fatal(err)
		}
		return p
	}
	f.Add(good("b", hintItem{Key: []byte("k"), Object: version.Encode(o1)}))
	f.Add(good("b", hintItem{Key: []byte("k"), Object: version.Encode(tomb(o1, "x#1"))},
		hintItem{Key: []byte("k2"), Object: version.Encode(obj(nil, "y#2", "v2"))}))
	f.Add(good("b"))
	f.Add(good("a", hintItem{Key: []byte("k"), Object: version.Encode(o1)}))
	f.Add(good("b", hintItem{Key: nil, Object: version.Encode(o1)}))
	f.Add(good("b", hintItem{Key: []byte("k"), Object: []byte{0x92, 0x90, 0x90}}))
	f.Add(good("b", hintItem{Key: []byte("k"), Object: []byte{0xc1}}))
	f.Add([]byte{})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x82, 0xa1, 'f', 0xa1, 'b', 0xa1, 'i', 0xdc, 0xff, 0xff})

	f.Fuzz(func(t *testing.T, payload []byte) {
		resp, err := b.h.Handle(context.Background(), KindHintBatch, payload)
		if err != nil {
			if wire.CodeOf(err) == 0 {
				t.Fatalf("Handle returned %T %v, want a *wire.Error", err, err)
			}
			return
		}
		var r hintBatchReply
		if err := wire.Unmarshal(resp, &r); err != nil {
			t.Fatalf("reply does not decode: %v", err)
		}
		var batch hintBatch
		if err := wire.Unmarshal(payload, &batch); err != nil || r.Merged != len(batch.Items) {
			t.Fatalf("acknowledged %d objects of a batch that decodes to %d (%v)", r.Merged, len(batch.Items), err)
		}
		// What was acknowledged is there.
		for _, it := range batch.Items {
			want, _ := version.Decode(it.Object)
			got, err := b.st.Get(it.Key)
			if err != nil || !version.Descends(got, want) {
				t.Fatalf("key %q: stored %v (%v) does not cover the acknowledged object", it.Key, got, err)
			}
		}
	})
}

func TestHandleRejects(t *testing.T) {
	c := newTestCluster(t)
	b := c.addWith("b", testConfig(t), func(o *store.Options) { o.MaxValueSize = 8 })
	enc := func(bt hintBatch) []byte {
		p, err := wire.Marshal(&bt)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := version.Encode(obj(nil, "x#1", "v"))
	many := make([]hintItem, MaxBatchItems+1)
	for i := range many {
		many[i] = hintItem{Key: []byte("k"), Object: ok}
	}
	for _, tc := range []struct {
		name    string
		kind    Kind
		payload []byte
		code    wire.Code
	}{
		{"unknown kind", KindHintBatch + 1, enc(hintBatch{For: "b"}), wire.CodeUnknownKind},
		{"garbage", KindHintBatch, []byte("not msgpack"), wire.CodeBadRequest},
		{"no target", KindHintBatch, enc(hintBatch{Items: []hintItem{{Key: []byte("k"), Object: ok}}}), wire.CodeBadRequest},
		{"other target", KindHintBatch, enc(hintBatch{For: "c", Items: []hintItem{{Key: []byte("k"), Object: ok}}}), wire.CodeUnavailable},
		{"empty key", KindHintBatch, enc(hintBatch{For: "b", Items: []hintItem{{Object: ok}}}), wire.CodeBadRequest},
		{"bad object", KindHintBatch, enc(hintBatch{For: "b", Items: []hintItem{{Key: []byte("k"), Object: []byte{1, 2, 3}}}}), wire.CodeBadRequest},
		{"empty object", KindHintBatch, enc(hintBatch{For: "b", Items: []hintItem{{Key: []byte("k"), Object: version.Encode(nil)}}}), wire.CodeBadRequest},
		{"value too large", KindHintBatch, enc(hintBatch{For: "b", Items: []hintItem{{Key: []byte("k"), Object: version.Encode(obj(nil, "x#1", "123456789"))}}}), wire.CodeBadRequest},
		{"too many", KindHintBatch, enc(hintBatch{For: "b", Items: many}), wire.CodeBadRequest},
	} {
		_, err := b.h.Handle(context.Background(), tc.kind, tc.payload)
		if got := wire.CodeOf(err); got != tc.code {
			t.Errorf("%s: err %v (code %v), want code %v", tc.name, err, got, tc.code)
		}
	}
	if n := b.st.Counts(); n.Live != 0 {
		t.Errorf("a rejected batch stored keys: %+v", n)
	}
}
