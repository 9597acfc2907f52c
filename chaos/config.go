package chaos

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Config configures a run. DefaultConfig gives the values documented on
// each field; ShortConfig the short run of `make test`.
type Config struct {
	// Binary is the mnemo executable the nodes run. Required.
	Binary string
	// Dir is the run directory: node data and logs, history, report.
	// Emptied first. Default ".chaos".
	Dir string
	// Seed draws the fault schedule and the workloads' choices; 0 picks
	// one from the clock. The report and the first line printed name it.
	Seed int64
	// Nodes is the cluster size. Default 5.
	Nodes int
	// N, R, W are the nodes' request defaults. Default 3, 2, 2.
	N, R, W int
	// Conflicts is the cluster's conflict mode, siblings or lww. lww is the
	// experiment of how many set adds last-write-wins loses. Default
	// siblings.
	Conflicts string
	// Strict makes the workloads' writes count only home replicas toward W
	// (Riak's PW): no sloppy quorum. Default false.
	Strict bool

	// Duration is how long the workloads and faults run. Default 10m.
	Duration time.Duration
	// FaultGapMin and FaultGapMax bound the time between two fault starts.
	// Default 5s and 15s.
	FaultGapMin, FaultGapMax time.Duration
	// Faults are the fault kinds to draw from (kill, pause, wipe,
	// partition, isolate); empty means none (a run without faults).
	// Default all. Partition kinds are dropped when namespaces cannot be
	// used, and the report says so.
	Faults []FaultKind
	// MaxConcurrentFaults is how many faults may be active at once.
	// Default 2.
	MaxConcurrentFaults int
	// WipeGap is the least time between two wipes: a wiped replica needs
	// this long to be refilled before another replica of the same keys may
	// lose its disk. Default 30s.
	WipeGap time.Duration
	// Netns is auto (namespaces when root), on (fail if they cannot be
	// made) or off. Default auto.
	Netns string

	// SetWorkers, RegisterWorkers and DeleteWorkers are the concurrent
	// clients of each workload, each with its own SDK client. Default 6,
	// 4 and 2.
	SetWorkers, RegisterWorkers, DeleteWorkers int
	// SetKeys and RegisterKeys are how many keys those workloads share.
	// Default 4 and 64.
	SetKeys, RegisterKeys int
	// OpTimeout bounds each call of a workload. Default 2s.
	OpTimeout time.Duration
	// Rate caps the operations started per second over all workers; 0: no
	// cap. Default 300.
	Rate float64

	// ConvergeTimeout bounds the wait for convergence after the final
	// heal. Default 90s.
	ConvergeTimeout time.Duration
	// ConvergeTarget is what the report holds convergence to (the issue's
	// promise); exceeding it fails the run. Default 30s.
	ConvergeTarget time.Duration
	// Convergence is the criterion: auto (merkle when the nodes report
	// Merkle roots, else local), merkle, or local (every home replica's
	// stored copy of every key equal). Default auto.
	Convergence string
	// RepairSweep reads every key at R=N before each convergence poll, so
	// read repair alone can converge the replicas: an experiment for when
	// anti-entropy is off, not the default.
	RepairSweep bool

	// NodeFlags are extra `mnemo node` flags for every node.
	NodeFlags []string
	// PlantBugs are deliberate bugs in the harness's client layer that
	// the checker must catch: lose-add, skip-delete, drop-context.
	PlantBugs []string
	// Keep leaves the node data behind (the report, history and logs are
	// always kept).
	Keep bool
	// Hold keeps the cluster running after the report until the context
	// ends, for the operator scripts.
	Hold bool
	// Out receives progress lines and the summary; nil: discarded.
	Out io.Writer
}

// FaultKind names one kind of fault.
type FaultKind string

// Fault kinds. NB: they appear in reports and replay seeds; only append.
const (
	// FaultKill is SIGKILL, then a restart on the same data directory.
	FaultKill FaultKind = "kill"
	// FaultPause is SIGSTOP for longer than the failure detector's
	// timeout, then SIGCONT.
	FaultPause FaultKind = "pause"
	// FaultWipe is SIGKILL, the data directory deleted, then a restart.
	FaultWipe FaultKind = "wipe"
	// FaultPartition splits the nodes into a majority and a minority.
	FaultPartition FaultKind = "partition"
	// FaultIsolate cuts one node off from all others.
	FaultIsolate FaultKind = "isolate"
)

// AllFaults lists every fault kind.
var AllFaults = []FaultKind{FaultKill, FaultPause, FaultWipe, FaultPartition, FaultIsolate}

func (k FaultKind) network() bool { return k == FaultPartition || k == FaultIsolate }

// Planted bugs, for the checker's own test.
const (
	// BugLoseAdd acknowledges every 10th set add without sending it.
	BugLoseAdd = "lose-add"
	// BugSkipDelete acknowledges every 10th delete without sending it.
	BugSkipDelete = "skip-delete"
	// BugDropContext sends every 10th register write without the context
	// it read, so it supersedes nothing.
	BugDropContext = "drop-context"
)

var allBugs = []string{BugLoseAdd, BugSkipDelete, BugDropContext}

// DefaultConfig returns the long run of `make chaos`.
func DefaultConfig() Config {
	return Config{
		Dir:                 ".chaos",
		Nodes:               5,
		N:                   3,
		R:                   2,
		W:                   2,
		Conflicts:           "siblings",
		Duration:            10 * time.Minute,
		FaultGapMin:         5 * time.Second,
		FaultGapMax:         15 * time.Second,
		Faults:              slices.Clone(AllFaults),
		MaxConcurrentFaults: 2,
		WipeGap:             30 * time.Second,
		Netns:               "auto",
		SetWorkers:          6,
		RegisterWorkers:     4,
		DeleteWorkers:       2,
		SetKeys:             4,
		RegisterKeys:        64,
		OpTimeout:           2 * time.Second,
		Rate:                300,
		ConvergeTimeout:     90 * time.Second,
		ConvergeTarget:      30 * time.Second,
		Convergence:         "auto",
	}
}

// ShortConfig returns the short seeded run of `make test`: about a minute
// of faults of every kind, faults every 3-6 s.
func ShortConfig() Config {
	c := DefaultConfig()
	c.Duration = 40 * time.Second
	c.FaultGapMin = 3 * time.Second
	c.FaultGapMax = 6 * time.Second
	c.WipeGap = 20 * time.Second
	c.SetWorkers, c.RegisterWorkers, c.DeleteWorkers = 4, 3, 2
	c.RegisterKeys = 32
	c.Rate = 150
	c.ConvergeTimeout = 45 * time.Second
	return c
}

// Validate reports every bad field at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("chaos: --%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if c.Binary == "" {
		bad("binary", "the mnemo executable is required")
	}
	if c.Dir == "" {
		bad("dir", "must not be empty")
	}
	if c.Nodes < 1 || c.Nodes > 9 {
		bad("nodes", "%d must be in [1, 9]", c.Nodes)
	}
	if c.N < 1 || c.N > c.Nodes {
		bad("n", "%d must be in [1, nodes=%d]", c.N, c.Nodes)
	}
	if c.R < 1 || c.R > c.N {
		bad("r", "%d must be in [1, n=%d]", c.R, c.N)
	}
	if c.W < 1 || c.W > c.N {
		bad("w", "%d must be in [1, n=%d]", c.W, c.N)
	}
	if c.Conflicts != "siblings" && c.Conflicts != "lww" {
		bad("conflicts", "%q must be siblings or lww", c.Conflicts)
	}
	if c.Duration <= 0 {
		bad("duration", "%v must be positive", c.Duration)
	}
	if c.FaultGapMin <= 0 || c.FaultGapMax < c.FaultGapMin {
		bad("fault-gap", "%v-%v must be positive and ordered", c.FaultGapMin, c.FaultGapMax)
	}
	for _, k := range c.Faults {
		if !slices.Contains(AllFaults, k) {
			bad("faults", "%q is not one of %s", k, joinKinds(AllFaults))
		}
	}
	if c.MaxConcurrentFaults < 1 {
		bad("max-concurrent-faults", "%d must be at least 1", c.MaxConcurrentFaults)
	}
	if c.WipeGap < 0 {
		bad("wipe-gap", "%v must not be negative", c.WipeGap)
	}
	if !slices.Contains([]string{"auto", "on", "off"}, c.Netns) {
		bad("netns", "%q must be auto, on or off", c.Netns)
	}
	if c.SetWorkers < 0 || c.RegisterWorkers < 0 || c.DeleteWorkers < 0 || c.SetWorkers+c.RegisterWorkers+c.DeleteWorkers == 0 {
		bad("workers", "need at least one worker, and none negative")
	}
	if c.SetWorkers > 0 && c.SetKeys < 1 {
		bad("set-keys", "%d must be at least 1", c.SetKeys)
	}
	if c.RegisterWorkers > 0 && c.RegisterKeys < 1 {
		bad("register-keys", "%d must be at least 1", c.RegisterKeys)
	}
	if c.OpTimeout <= 0 {
		bad("op-timeout", "%v must be positive", c.OpTimeout)
	}
	if c.Rate < 0 {
		bad("rate", "%v must not be negative", c.Rate)
	}
	if c.ConvergeTimeout <= 0 || c.ConvergeTarget <= 0 {
		bad("converge-timeout", "timeout %v and target %v must be positive", c.ConvergeTimeout, c.ConvergeTarget)
	}
	if !slices.Contains([]string{"auto", "merkle", "local"}, c.Convergence) {
		bad("convergence", "%q must be auto, merkle or local", c.Convergence)
	}
	for _, b := range c.PlantBugs {
		if !slices.Contains(allBugs, b) {
			bad("plant-bug", "%q is not one of %s", b, strings.Join(allBugs, ", "))
		}
	}
	return errors.Join(errs...)
}

func joinKinds(ks []FaultKind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ",")
}

// BindFlags registers every setting as a flag on fs, with c's values as
// defaults; `mnemo chaos` and `go run ./chaos/cmd` share them. Binary,
// Out and the context are the caller's.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Dir, "dir", c.Dir, "run directory: node data and logs, history, report (emptied first)")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "seed of the fault schedule and workloads; 0 picks one (printed)")
	fs.IntVar(&c.Nodes, "nodes", c.Nodes, "cluster size")
	fs.IntVar(&c.N, "n", c.N, "replicas per key")
	fs.IntVar(&c.R, "r", c.R, "read quorum of the workloads")
	fs.IntVar(&c.W, "w", c.W, "write quorum of the workloads")
	fs.StringVar(&c.Conflicts, "conflicts", c.Conflicts, "conflict mode: siblings, or lww (the experiment: how many set adds LWW loses)")
	fs.BoolVar(&c.Strict, "strict", c.Strict, "count only home replicas toward W (no sloppy quorum)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long workloads and faults run")
	fs.DurationVar(&c.FaultGapMin, "fault-gap-min", c.FaultGapMin, "least time between two fault starts")
	fs.DurationVar(&c.FaultGapMax, "fault-gap-max", c.FaultGapMax, "most time between two fault starts")
	fs.Var(&kindsFlag{&c.Faults}, "faults", "fault kinds to draw from: "+joinKinds(AllFaults)+", or none")
	fs.IntVar(&c.MaxConcurrentFaults, "max-concurrent-faults", c.MaxConcurrentFaults, "faults active at once, at most")
	fs.DurationVar(&c.WipeGap, "wipe-gap", c.WipeGap, "least time between two wipes")
	fs.StringVar(&c.Netns, "netns", c.Netns, "network namespaces for partitions: auto (when root), on, off")
	fs.IntVar(&c.SetWorkers, "set-workers", c.SetWorkers, "concurrent clients adding to sets")
	fs.IntVar(&c.RegisterWorkers, "register-workers", c.RegisterWorkers, "concurrent clients writing registers")
	fs.IntVar(&c.DeleteWorkers, "delete-workers", c.DeleteWorkers, "concurrent clients writing then deleting keys")
	fs.IntVar(&c.SetKeys, "set-keys", c.SetKeys, "keys the set workload shares")
	fs.IntVar(&c.RegisterKeys, "register-keys", c.RegisterKeys, "keys the register workload shares")
	fs.DurationVar(&c.OpTimeout, "op-timeout", c.OpTimeout, "timeout of each workload call")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "operations started per second over all workers, at most; 0: no cap")
	fs.DurationVar(&c.ConvergeTimeout, "converge-timeout", c.ConvergeTimeout, "how long to wait for convergence after the final heal")
	fs.DurationVar(&c.ConvergeTarget, "converge-target", c.ConvergeTarget, "convergence slower than this fails the run")
	fs.StringVar(&c.Convergence, "convergence", c.Convergence, "criterion: auto, merkle (equal Merkle roots), local (equal stored copies)")
	fs.BoolVar(&c.RepairSweep, "repair-sweep", c.RepairSweep, "read every key at R=N before each convergence poll (read repair alone)")
	fs.StringArrayVar(&c.NodeFlags, "node-flag", c.NodeFlags, "extra `mnemo node` flag for every node (repeatable), e.g. --node-flag=--read-repair-wait=2s")
	fs.StringSliceVar(&c.PlantBugs, "plant-bug", c.PlantBugs, "deliberate harness bug the checker must catch: "+strings.Join(allBugs, ", "))
	fs.BoolVar(&c.Keep, "keep", c.Keep, "keep the nodes' data directories")
	fs.BoolVar(&c.Hold, "hold", c.Hold, "keep the cluster running after the report until interrupted (for the scripts in chaos/)")
}

// kindsFlag is a comma-separated list of fault kinds; "none" is empty.
type kindsFlag struct{ kinds *[]FaultKind }

func (f *kindsFlag) String() string {
	if f.kinds == nil || len(*f.kinds) == 0 {
		return "none"
	}
	return joinKinds(*f.kinds)
}

func (f *kindsFlag) Set(v string) error {
	*f.kinds = nil
	if strings.TrimSpace(v) == "none" {
		return nil
	}
	for _, s := range strings.Split(v, ",") {
		k := FaultKind(strings.TrimSpace(s))
		if !slices.Contains(AllFaults, k) {
			return fmt.Errorf("%q is not one of %s, or none", k, joinKinds(AllFaults))
		}
		if !slices.Contains(*f.kinds, k) {
			*f.kinds = append(*f.kinds, k)
		}
	}
	return nil
}

func (f *kindsFlag) Type() string { return "kinds" }
