package main

import (
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mnemo-kv/mnemo/internal/bench"
)

func init() { extraCommands = append(extraCommands, benchCmd) }

// benchCmd is `mnemo bench`: its flags set a bench.Config, and bench.Run
// does the rest (the table on stdout, the JSON file, progress on stderr).
func benchCmd() *cobra.Command {
	cfg := bench.DefaultConfig()
	var quick bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Start local nodes and measure throughput, latency, resources and rejoins",
		Long: `Start local clusters of real mnemo processes and measure, in one run:

  sdk       Go SDK puts and gets (64 callers, 100-byte values) at each
            --quorum, closed loop (ops/s, p50, p99, p99.9), then an open
            loop at half the peak of the first quorum (latency from the
            scheduled send, so queueing counts)
  redis     redis-benchmark SET and GET against node-1's Redis port (nodes
            --sync always, then --sync none) and against a local
            redis-server (no persistence, then appendfsync always), with
            the ratios mnemo/redis
  hints     hinted handoff: node-3 misses --hint-keys writes (killed), then
            restarts; time until it holds them all, hints replayed/s
  ae        anti-entropy on --ae-keys keys (hints and read repair off): an
            in-sync round, a node missing --ae-missing keys (time to equal
            Merkle roots, bytes per missing byte), foreground p99 during
            the repair vs without
  transfer  add a 4th node to the ae cluster: time and MB/s, keys/s
  peer      redis-benchmark SET and GET against mnemo (--sync none, then
            --sync always), 3 Olric v0.7.4 nodes (DM.PUT/DM.GET, 3
            replicas, quorums of 2) and redis-server, in --peer-rounds
            alternating rounds with fresh processes: ops/s, p50, p99, CPU
            per operation, RSS and the ratios mnemo/Olric, mnemo/redis;
            then mnemo's light-load tail (SDK open loop at 200 and 1,000
            ops/s). Olric: --olric-bin, else go install into .bench-tools/

Every phase also reports each process's CPU seconds per 1,000 operations
and RSS (from /proc). The clusters of the load-heavy phases (ae, transfer)
run with --sync none so 1M keys load in a few minutes; the table says
which setting each figure was measured with. Results go to a table on
stdout and a JSON file; progress goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if quick {
				cfg = bench.QuickConfig(cfg, cmd.Flags().Changed)
			}
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			_, err := bench.Run(ctx, cfg)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", cfg.Dir, "directory for the nodes' data and logs (emptied first)")
	f.StringVar(&cfg.Out, "out", cfg.Out, "JSON results file (in --dir's parent when relative)")
	f.StringVar(&cfg.Binary, "node-binary", cfg.Binary, "the mnemo binary the nodes run (default: this one), to measure another build with this harness")
	f.StringSliceVar(&cfg.Only, "only", nil, "phases to run, comma-separated: "+strings.Join(bench.Phases, ",")+" (rejoin = hints); default all")
	f.BoolVar(&quick, "quick", false, "small sizes and 2 s phases, for a smoke run (explicit size flags still win)")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the keys and values drawn (0: from the clock; printed)")
	f.BoolVar(&cfg.Keep, "keep", false, "keep the nodes' data directories after the run")
	f.StringArrayVar(&cfg.NodeArgs, "node-arg", nil, "extra node flag for every node of every cluster, e.g. --node-arg=--hint-rate=50000 (repeat; wins over the bench's own)")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of each closed-loop SDK phase")
	f.DurationVar(&cfg.OpenDuration, "open-duration", cfg.OpenDuration, "length of each open-loop SDK phase")
	f.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "concurrent SDK callers")
	f.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "value size in bytes (every phase)")
	f.IntVar(&cfg.Keys, "keys", cfg.Keys, "distinct keys of the SDK phases (preloaded)")
	f.StringVar(&cfg.Sync, "sync", cfg.Sync, "the nodes' --sync mode in the SDK phases")
	f.StringArrayVar(&cfg.Quorums, "quorum", cfg.Quorums, "an N,R,W setting to measure (repeat for several; the first gets the open loop)")
	f.IntSliceVar(&cfg.OpenRates, "open-rate", nil, "also run the SDK open loop at these rates (ops/s, comma-separated): latency against load")
	f.StringSliceVar(&cfg.Target, "target", nil, "RPC addresses of a running cluster: run only the SDK phases, against it")
	f.BoolVar(&cfg.Profile, "profile", cfg.Profile, "take CPU profiles of node-1 during the first quorum's phases and redis SET (the summary needs the go tool)")
	f.IntVar(&cfg.RedisRequests, "redis-requests", cfg.RedisRequests, "redis-benchmark -n (requests per test)")
	f.IntVar(&cfg.RedisKeys, "redis-keys", cfg.RedisKeys, "redis-benchmark -r (key space)")
	f.IntVar(&cfg.RedisClients, "redis-clients", cfg.RedisClients, "redis-benchmark -c")
	f.IntSliceVar(&cfg.RedisPipelines, "redis-pipeline", cfg.RedisPipelines, "redis-benchmark -P values")
	f.IntVar(&cfg.HintKeys, "hint-keys", cfg.HintKeys, "keys node-3 misses in the hinted-handoff phase")
	f.IntVar(&cfg.AeKeys, "ae-keys", cfg.AeKeys, "keys loaded in the anti-entropy and transfer cluster")
	f.IntVar(&cfg.AeMissing, "ae-missing", cfg.AeMissing, "keys node-3 misses in each anti-entropy repair")
	f.DurationVar(&cfg.AeInterval, "ae-interval", cfg.AeInterval, "the ae cluster's --ae-interval (the in-sync round waits for one)")
	f.IntVar(&cfg.LoadConcurrency, "load-concurrency", cfg.LoadConcurrency, "concurrent SDK callers when loading keys")
	f.IntVar(&cfg.LightRate, "light-rate", cfg.LightRate, "ops/s of the light foreground load (half gets, half puts) around the repair")
	f.DurationVar(&cfg.LightDuration, "light-duration", cfg.LightDuration, "length of the light load's baseline (long enough to span the periodic anti-entropy rounds and Pebble flushes a repair window also spans)")
	f.DurationVar(&cfg.WaitTimeout, "wait-timeout", cfg.WaitTimeout, "bound of each wait for a rejoin, repair or join to complete")
	f.IntVar(&cfg.PeerRounds, "peer-rounds", cfg.PeerRounds, "rounds of the peer comparison, each running mnemo --sync none, mnemo --sync always, Olric and redis-server once")
	f.DurationVar(&cfg.PeerOpenDuration, "peer-open-duration", cfg.PeerOpenDuration, "length of each open loop of the peer phase's light-load tail")
	f.StringVar(&cfg.OlricBin, "olric-bin", cfg.OlricBin, "olric-server v0.7.4 for the peer phase (default $MNEMO_BENCH_OLRIC; unset: go install it into .bench-tools/ beside --dir)")
	return cmd
}
