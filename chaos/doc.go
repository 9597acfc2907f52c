// Package chaos proves, with real `mnemo node` processes, that mnemo keeps
// what it acknowledged through crashes, pauses, wiped disks and network
// partitions: the way Jepsen tested Riak and Cassandra (Kingsbury, "Call
// me maybe: Riak", 2013), and the checks Dynamo §6 argues for in prose.
//
// A run (Run) is:
//
//  1. Start a cluster (default 5 nodes, N=3) of real processes. As root,
//     each node lives in its own network namespace on a private bridge
//     (netns.go), so partitions can cut real traffic; otherwise the nodes
//     run on loopback and partitions are left out, said in the report.
//  2. Drive three workloads (workload.go) from many concurrent SDK clients
//     while a nemesis (faults.go) plays a fault schedule drawn from a seed
//     (schedule.go): SIGKILL and restart on the same directory, SIGSTOP for
//     longer than the failure detector, restart on a wiped directory,
//     majority/minority partitions and isolating one node. Every operation
//     is logged (history.go) with its invocation, completion and outcome.
//  3. Heal everything, wait until the replicas agree (converge.go; the time
//     it takes is reported), read every key at R=N and each home replica's
//     stored copy, and check the three properties (checker.go).
//  4. Report (report.go, svg.go): a summary on the terminal, report.json,
//     and report.svg with throughput and error rate over time, the fault
//     windows as bands and the convergence time marked. The history and
//     the nodes' logs stay in the run directory.
//
// The properties, for each view of each key (the R=N read and every home
// replica's copy):
//
//   - set: every acknowledged add is in the final set (none lost);
//   - register: the final value holds no value an acknowledged write
//     superseded (none stale), and every acknowledged write is there unless
//     a write that read it took its place (none lost);
//   - delete: no value an acknowledged delete covered is live (none
//     resurrected).
//
// Every run prints its seed; the same seed and fault kinds give the same
// schedule (the interleaving with the workload differs, as it must with
// real processes). With conflicts=lww the run is the documented experiment
// of how many set adds last-write-wins loses; those losses are reported,
// not failed.
//
// A planted bug (Config.PlantBugs: the harness's own client layer
// acknowledging an add or delete it never sent, or writing without the
// context it read) must make the check fail; TestPlantedBugsAreCaught shows
// that it does, so the checker is known to catch what it claims to.
//
// # Running it
//
//	mnemo chaos --duration 10m --seed 42      # or: make chaos
//	go run ./chaos/cmd --duration 1m          # builds mnemo itself
//	go test ./chaos -run TestChaosShort       # the short run of make test
//
// The shell scripts next to this file (kill.sh, restart.sh, pause.sh,
// resume.sh, partition.sh, heal.sh) do the single actions by hand on a
// cluster a run started (see --hold), using the cluster.env the run
// writes.
//
// # What the caller does
//
// Fill a Config (DefaultConfig, or ShortConfig for tests), set Binary to a
// mnemo executable, call Run; it returns the Report (Report.Failed says
// whether a property was violated) or an error when the harness itself
// could not do its job. Run stops every process and removes every network
// namespace it created however it ends; a crashed run's namespaces are
// removed by the next run (their names carry the creator's pid).
package chaos
