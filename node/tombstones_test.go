package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/config"
	"github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/store"
)

func TestTombstonesReapedAfterGrace(t *testing.T) {
	tc := startCluster(t, 1, func(c *Config) { c.N, c.R, c.W, c.TombstoneGrace = 1, 1, 1, 500*time.Millisecond })
	ctx := ctxFor(t)
	cl := tc.client(0)
	cl.Put(ctx, []byte("gone"), []byte("v"))
	cl.Put(ctx, []byte("kept"), []byte("v"))
	if err := cl.Delete(ctx, []byte("gone")); err != nil {
		t.Fatal(err)
	}
	st := tc.nodes[0].store
	if o, err := st.Get([]byte("gone")); err != nil || !o.Deleted() {
		t.Fatalf("tombstone not stored: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "the tombstone reaped", func() (bool, string) {
		_, err := st.Get([]byte("gone"))
		return errors.Is(err, store.ErrNotFound), fmt.Sprint(err)
	})
	if _, err := cl.Get(ctx, []byte("kept")); err != nil {
		t.Fatalf("a live key was reaped: %v", err)
	}
	if c := st.Counts(); c.Tombstones != 0 || c.Live != 1 {
		t.Fatalf("counts after reaping: %+v", c)
	}
}

// A node that was away longer than the grace refuses to start by default,
// or moves its data aside and starts empty when told to.
func TestStaleNodeRefusesOrRejoinsEmpty(t *testing.T) {
	cfg := testConfig(t, "stale", nil, func(c *Config) { c.N, c.R, c.W, c.TombstoneGrace = 1, 1, 1, time.Hour })
	nd, err := New(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := client.New(nd.RPCAddr())
	ctx := ctxFor(t)
	if _, err := cl.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	epoch := nd.store.Epoch()
	nd.Close()

	// Pretend it was last alive two hours ago.
	st, err := store.Open(store.Options{Dir: cfg.Data, NodeID: cfg.ID, Partitions: cfg.Partitions, Segments: cfg.Segments})
	if err != nil {
		t.Fatal(err)
	}
	st.SetMeta(metaAliveAt, binary.BigEndian.AppendUint64(nil, uint64(time.Now().Add(-2*time.Hour).UnixNano())))
	st.Close()

	cfg.RPC, cfg.Gossip, cfg.HTTP = "127.0.0.1:0", "127.0.0.1:0", ""
	if _, err := New(cfg, zerolog.New(io.Discard)); !errors.Is(err, ErrStaleData) {
		t.Fatalf("stale start: %v, want ErrStaleData", err)
	}
	cfg.StaleData = config.StaleRejoinEmpty
	nd, err = New(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatalf("rejoin-empty start: %v", err)
	}
	defer nd.Close()
	if !nd.store.Fresh() || nd.store.Epoch() == epoch {
		t.Fatalf("rejoin-empty kept the old data (epoch %s, was %s)", nd.store.Epoch(), epoch)
	}
	aside, _ := filepath.Glob(cfg.Data + ".stale-*")
	if len(aside) != 1 {
		t.Fatalf("data not moved aside: %v", aside)
	}
	defer os.RemoveAll(aside[0])
	if _, err := nd.store.Get([]byte("k")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old key still served: %v", err)
	}
}
