// Package bench is `mnemo bench`: it starts local clusters of real mnemo
// processes and measures, in one run, the numbers of issue 6 and the
// rejoin figures of issues 3, 4 and 7. Run executes the phases a Config
// selects (Phases, in this order) and returns their Report:
//
//   - sdk: Go SDK puts and gets at each quorum, closed loop (ops/s, p50,
//     p99, p99.9), then an open loop at half the first quorum's peak, with
//     latency from the scheduled send so queueing counts (sdk.go).
//   - redis: redis-benchmark SET and GET against node-1's Redis port
//     (--sync always, then none) and a local redis-server, with the ratios
//     mnemo/redis (redis.go).
//   - hints: hinted handoff; node-3 misses HintKeys writes while killed,
//     then restarts: time until it holds them all, hints replayed/s
//     (handoff.go).
//   - ae: anti-entropy on AeKeys keys with hints and read repair off: an
//     in-sync round, a node missing AeMissing keys (time to equal Merkle
//     roots, bytes per missing byte), foreground p99 during the repair
//     against without (ae.go).
//   - transfer: a 4th node joins the ae cluster: time, MB/s, keys/s
//     (transfer.go).
//   - peer: mnemo, 3 Olric v0.7.4 nodes and redis-server under the same
//     redis-benchmark load in alternating rounds of fresh processes, then
//     mnemo's light-load tail (peer.go).
//
// Every phase also reports each process's CPU seconds per 1,000 operations
// and RSS, read from /proc (cluster.go, with the cluster plumbing). The
// report is printed as tables on stdout and written as JSON to Config.Out;
// progress goes to stderr. The targets of the issues are checked against
// the figures (report.go); a missed target is in the report, not an error.
//
// The caller gives the mnemo binary the nodes run (Config.Binary; empty:
// os.Executable, which is right only inside the mnemo command) and owns the
// context: cancelling it cuts the phase under way short and skips the
// rest; the report of what was measured is still printed and written, and
// Run's error includes the context's. Run empties Config.Dir first
// and removes it afterwards unless Config.Keep.
//
// The measuring pieces that know nothing about mnemo (latency recorder,
// load drivers, /proc readers, redis-benchmark CSV) are in
// internal/benchutil.
package bench
