package node

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/config"
)

// BenchmarkClusterPutGet measures puts and gets through the SDK against
// three in-process nodes (real TCP, real Pebble with sync=none), 64
// concurrent callers, 100-byte values: the hot path without fsync.
func BenchmarkClusterPutGet(b *testing.B) {
	tc := startBenchCluster(b)
	cl, err := client.NewWithConfig(client.Config{Addrs: []string{tc[0].RPCAddr(), tc[1].RPCAddr(), tc[2].RPCAddr()}, ConnsPerAddr: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	val := make([]byte, 100)
	for _, op := range []string{"put", "get"} {
		b.Run(op, func(b *testing.B) {
			var ctr atomic.Int64
			b.SetParallelism(32)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					k := fmt.Appendf(nil, "bench-%d", ctr.Add(1)%10000)
					var err error
					if op == "put" {
						_, err = cl.Put(ctx, k, val, client.Overwrite())
					} else {
						_, err = cl.Get(ctx, k)
						if err == client.ErrNotFound {
							err = nil
						}
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			var in, out, fl uint64
			for _, nd := range tc {
				st := nd.rpc.Stats()
				in, out, fl = in+st.FramesIn, out+st.FramesOut, fl+st.Flushes
			}
			b.ReportMetric(float64(out)/float64(max(fl, 1)), "frames/flush")
		})
	}
}

func startBenchCluster(b *testing.B) []*Node {
	var nodes []*Node
	var join []string
	for i := range 3 {
		cfg := config.Default()
		cfg.ID = fmt.Sprintf("b%d", i+1)
		cfg.Data = b.TempDir()
		cfg.Gossip, cfg.RPC = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Join = join
		cfg.Sync = 2 // none
		nd, err := New(cfg, testLoggerB(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { nd.Close() })
		if i == 0 {
			join = []string{nd.GossipAddr()}
		}
		nodes = append(nodes, nd)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, nd := range nodes {
		for len(nd.view.Load().ring.Nodes()) != 3 {
			if time.Now().After(deadline) {
				b.Fatalf("%s sees %d ring nodes after 30s", nd.ID(), len(nd.view.Load().ring.Nodes()))
			}
			waitBriefly()
		}
	}
	return nodes
}

func testLoggerB(b *testing.B) zerolog.Logger { return zerolog.New(io.Discard) }

// waitBriefly paces a setup poll in a benchmark.
func waitBriefly() { <-time.After(20 * time.Millisecond) }
