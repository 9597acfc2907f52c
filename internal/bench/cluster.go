package bench

// The bench's plumbing: clusters whose node flags can change between
// restarts, each node's own report from status, the Merkle roots and hint
// counts in it, keys and values, and the /proc meter of a phase.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/benchutil"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/poll"
)

// benchCluster is a local cluster started by the bench.
type benchCluster struct {
	*localcluster.Cluster
	b *bench
	// admin asks for status; it reaches any node by address.
	admin *client.Client

	mu   sync.Mutex // guards args
	args []string   // the bench's flags for every node, read at each start
}

// startCluster starts a 3-node cluster called name under the bench's
// directory with the given node flags (then --node-arg's), and waits until
// every node sees the others alive and active.
func (b *bench) startCluster(ctx context.Context, name string, resp bool, args ...string) (*benchCluster, error) {
	bc := &benchCluster{b: b, args: args}
	dir := filepath.Join(b.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c, err := localcluster.New(localcluster.Options{
		Binary: b.binary, Dir: dir, Nodes: 3, HTTP: true, RESP: resp,
		Args: []string{"--log-level", "warn"},
		NodeArgs: func(int) []string {
			bc.mu.Lock()
			defer bc.mu.Unlock()
			return append(slices.Clone(bc.args), b.o.NodeArgs...)
		},
	})
	if err != nil {
		return nil, err
	}
	bc.Cluster = c
	if bc.admin, err = client.NewWithConfig(client.Config{Addrs: c.Addrs(), ConnsPerAddr: 1}); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.StartAll(sctx); err != nil {
		bc.Close()
		return nil, fmt.Errorf("%s cluster: %w (logs in %s)", name, err, dir)
	}
	b.progress("%s cluster up: %d nodes, flags %v", name, len(c.Nodes), append(slices.Clone(args), b.o.NodeArgs...))
	return bc, nil
}

// flag returns the value of node flag --name the nodes start with (the
// bench's flags, then --node-arg's: the last wins), or def.
func (bc *benchCluster) flag(name, def string) string {
	bc.mu.Lock()
	args := append(slices.Clone(bc.args), bc.b.o.NodeArgs...)
	bc.mu.Unlock()
	v := def
	for i, a := range args {
		switch {
		case a == "--"+name && i+1 < len(args):
			v = args[i+1]
		case strings.HasPrefix(a, "--"+name+"="):
			v = strings.TrimPrefix(a, "--"+name+"=")
		}
	}
	return v
}

// setArgs changes the bench's flags for the next (re)starts.
func (bc *benchCluster) setArgs(args ...string) {
	bc.mu.Lock()
	bc.args = args
	bc.mu.Unlock()
}

// Close kills every node and closes the admin client.
func (bc *benchCluster) Close() {
	bc.Cluster.Close()
	if bc.admin != nil {
		bc.admin.Close()
	}
}

// client returns an SDK client of the given nodes (all when none given),
// with enough connections for the bench's callers.
func (bc *benchCluster) client(idx ...int) (*client.Client, error) {
	if len(idx) == 0 {
		idx = bc.Indexes()
	}
	var addrs []string
	for _, i := range idx {
		addrs = append(addrs, bc.Nodes[i].RPC)
	}
	return client.NewWithConfig(client.Config{Addrs: addrs})
}

// procs are the running nodes, for a meter.
func (bc *benchCluster) procs() []benchProc {
	var out []benchProc
	for _, p := range bc.Nodes {
		out = append(out, benchProc{name: p.ID, pid: p.PID, admin: p.HTTP})
	}
	return out
}

// info returns node i's own report, asked of node i itself.
func (bc *benchCluster) info(ctx context.Context, i int) (*client.NodeInfo, *client.Status, error) {
	p := bc.Nodes[i]
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := bc.admin.Status(sctx, client.Node(p.RPC))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: status: %w", p.ID, err)
	}
	for _, m := range st.Members {
		if m.ID == p.ID && m.Info != nil {
			return m.Info, st, nil
		}
	}
	return nil, st, fmt.Errorf("%s: status without its own report", p.ID)
}

// infos returns the reports of the given nodes (all when none given), in
// that order: one status call to the first, which asks its live peers, and
// direct calls for the nodes it had no report of.
func (bc *benchCluster) infos(ctx context.Context, idx ...int) ([]*client.NodeInfo, error) {
	if len(idx) == 0 {
		idx = bc.Indexes()
	}
	out := make([]*client.NodeInfo, len(idx))
	_, st, err := bc.info(ctx, idx[0])
	if err != nil {
		return nil, err
	}
	for k, i := range idx {
		for _, m := range st.Members {
			if m.ID == bc.Nodes[i].ID && m.Info != nil {
				out[k] = m.Info
			}
		}
		if out[k] == nil {
			if out[k], _, err = bc.info(ctx, i); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// benchRootsEqual reports whether every node reports a root for each of the
// partitions and they are all equal (every node is a home replica of every
// partition: 3 nodes, N=3). It says what differs when they are not.
func benchRootsEqual(infos []*client.NodeInfo, partitions int) (bool, string) {
	all := make([]map[uint32]uint64, len(infos))
	for i, in := range infos {
		all[i] = in.AntiEntropy.Roots
	}
	differ, missing := 0, 0
	first := ""
	for p := range partitions {
		k := uint32(p)
		r0, ok := all[0][k]
		if !ok {
			missing++
			continue
		}
		for i := 1; i < len(all); i++ {
			r, ok := all[i][k]
			if !ok {
				missing++
			} else if r != r0 {
				differ++
				if first == "" {
					first = fmt.Sprintf("partition %d: %s has %016x, %s has %016x", p, infos[0].ID, r0, infos[i].ID, r)
				}
			}
		}
	}
	if differ == 0 && missing == 0 {
		return true, ""
	}
	return false, fmt.Sprintf("%d partition roots differ, %d not reported (trees not built); %s", differ, missing, first)
}

// benchPendingHints returns how many hints a node holds for target.
func benchPendingHints(info *client.NodeInfo, target string) float64 {
	return float64(info.Handoff.Pending[target])
}

// waitRootsEqual waits until the given nodes report equal Merkle roots for
// every partition.
func (bc *benchCluster) waitRootsEqual(ctx context.Context, partitions int, idx ...int) error {
	return poll.Until(ctx, bc.b.o.WaitTimeout, 100*time.Millisecond, "equal Merkle roots", func() (bool, string) {
		infos, err := bc.infos(ctx, idx...)
		if err != nil {
			return false, err.Error()
		}
		return benchRootsEqual(infos, partitions)
	})
}

// benchKey is key i of a key space named prefix.
func benchKey(prefix string, i int) []byte { return fmt.Appendf(nil, "%s-%08d", prefix, i) }

// benchValue fills a value of size bytes drawn from rnd: incompressible,
// like the values anti-entropy's bytes-per-missing-byte figure assumes.
func benchValue(rnd *rand.Rand, size int) []byte {
	v := make([]byte, (size+7)/8*8)
	for i := 0; i < len(v); i += 8 {
		binary.LittleEndian.PutUint64(v[i:], rnd.Uint64())
	}
	return v[:size]
}

// keyValue is the value of key i of a loaded key space: drawn from a rand
// seeded by (seed, i), so it can be checked later without being kept.
func keyValue(seed uint64, i, size int) []byte {
	return benchValue(rand.New(rand.NewPCG(seed, uint64(i))), size)
}

// load writes keys [from, from+n) of a key space with their keyValue from
// the bench's loaders, retrying each failed put a few times, and returns
// the figures and the key and value bytes written.
func (b *bench) load(ctx context.Context, cl *client.Client, prefix string, seed uint64, from, n int, opts ...client.Option) (benchLoadFigures, int64) {
	var total, done atomic.Int64
	// A line of progress every 15 s, for the long loads.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(15 * time.Second)
		defer tick.Stop()
		t0 := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				d := done.Load()
				b.progress("  %s: %d of %d keys written (%.0f keys/s)", prefix, d, n, float64(d)/time.Since(t0).Seconds())
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	res := benchutil.Each(ctx, b.o.LoadConcurrency, n, func(ctx context.Context, i int) error {
		k, v := benchKey(prefix, from+i), keyValue(seed, from+i, b.o.ValueSize)
		var err error
		for range 5 {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err = cl.Put(pctx, k, v, opts...)
			cancel()
			if err == nil {
				total.Add(int64(len(k) + len(v)))
				done.Add(1)
				return nil
			}
			if ctx.Err() != nil {
				break
			}
		}
		return err
	})
	return benchLoadFigures{Keys: res.Done, Failed: res.Failed, Seconds: res.Elapsed.Seconds(), KeysPerSec: res.PerSec}, total.Load()
}

// benchProc names a process to meter; pid is read at the start and the end
// (a node restarted meanwhile is a new process).
type benchProc struct {
	name string
	pid  func() int
	// admin is the node's admin HTTP address ("" for other processes):
	// its /metrics gives the store's WAL fsyncs and write stalls.
	admin string
}

// benchStoreStat is what a node's /metrics says of its store so far.
type benchStoreStat struct {
	ok            bool
	fsyncs        float64 // WAL fsyncs
	fsyncSeconds  float64 // their total time
	stallSeconds  float64 // time writes were stalled
	pebbleStalled float64 // write stalls
}

// readStoreStat scrapes the store's figures from a node's /metrics.
func readStoreStat(admin string) benchStoreStat {
	if admin == "" {
		return benchStoreStat{}
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		return benchStoreStat{}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return benchStoreStat{}
	}
	e := string(body)
	st := benchStoreStat{fsyncs: benchutil.MetricValue(e, "mnemo_store_wal_fsync_seconds_count"), fsyncSeconds: benchutil.MetricValue(e, "mnemo_store_wal_fsync_seconds_sum"),
		stallSeconds: benchutil.MetricValue(e, "mnemo_store_write_stall_seconds_total"), pebbleStalled: benchutil.MetricValue(e, "mnemo_store_write_stalls_total")}
	st.ok = st.fsyncs >= 0 && st.fsyncSeconds >= 0 && st.stallSeconds >= 0 && st.pebbleStalled >= 0
	return st
}

// benchMeter measures one phase's CPU and memory: of the processes given, of
// this process (the driver) and of the whole machine.
type benchMeter struct {
	b      *bench
	name   string
	procs  []benchProc
	pids   []int
	before []benchutil.ProcStat
	stores []benchStoreStat
	self   benchutil.ProcStat
	mach   benchutil.MachineCPU
	t0     time.Time
}

func (b *bench) startMeter(name string, procs []benchProc) *benchMeter {
	m := &benchMeter{b: b, name: name, procs: procs, t0: time.Now()}
	for _, p := range procs {
		pid := p.pid()
		st, _ := benchutil.ReadProc(pid)
		if pid == 0 {
			st = benchutil.ProcStat{}
		}
		m.pids = append(m.pids, pid)
		m.before = append(m.before, st)
		m.stores = append(m.stores, readStoreStat(p.admin))
	}
	m.self, _ = benchutil.ReadProc(0)
	m.mach, _ = benchutil.ReadMachineCPU()
	return m
}

// stop ends the phase: ops operations were done; childCPU is CPU time of
// short-lived driver processes (redis-benchmark) to count as the driver's.
// The figures are added to the report and returned.
func (m *benchMeter) stop(ops int, childCPU time.Duration) benchPhaseResources {
	el := time.Since(m.t0)
	r := benchPhaseResources{Phase: m.name, Ops: ops, Seconds: el.Seconds()}
	per1k := func(d time.Duration) float64 {
		if ops == 0 {
			return 0
		}
		return d.Seconds() / float64(ops) * 1000
	}
	var ours time.Duration
	for i, p := range m.procs {
		pid := p.pid()
		if pid == 0 {
			continue
		}
		st, err := benchutil.ReadProc(pid)
		if err != nil {
			continue
		}
		before := m.before[i]
		if pid != m.pids[i] {
			before = benchutil.ProcStat{} // restarted during the phase
		}
		cpu := st.CPU - before.CPU
		ours += cpu
		f := benchProcFigures{Name: p.name, CPUSeconds: cpu.Seconds(), CPUPer1kOps: per1k(cpu),
			RSSMiB: benchMiB(st.RSS), PeakRSSMiB: benchMiB(st.PeakRSS)}
		if s0, s1 := m.stores[i], readStoreStat(p.admin); s0.ok && s1.ok && pid == m.pids[i] {
			f.WALFsyncs = int64(s1.fsyncs - s0.fsyncs)
			if f.WALFsyncs > 0 {
				f.WALFsyncMeanMs = 1000 * (s1.fsyncSeconds - s0.fsyncSeconds) / float64(f.WALFsyncs)
			}
			f.WriteStalls, f.WriteStallSeconds = int64(s1.pebbleStalled-s0.pebbleStalled), s1.stallSeconds-s0.stallSeconds
		}
		r.Procs = append(r.Procs, f)
	}
	self, _ := benchutil.ReadProc(0)
	driver := self.CPU - m.self.CPU + childCPU
	ours += driver
	r.DriverCPUSeconds, r.DriverCPUPer1kOps = driver.Seconds(), per1k(driver)
	if mach, err := benchutil.ReadMachineCPU(); err == nil {
		busy := mach.Busy - m.mach.Busy
		r.MachineBusyCores = busy.Seconds() / el.Seconds()
		r.OtherBusyCores = max(0, (busy-ours).Seconds()/el.Seconds())
	}
	m.b.rep.Resources = append(m.b.rep.Resources, r)
	return r
}

func benchMiB(b int64) float64 { return float64(b) / (1 << 20) }

// quietCores is how busy the nodes may be, together, in cores, for
// waitQuiet to call them quiet.
const quietCores = 0.1

// waitQuiet waits until bc's nodes have used less than quietCores of CPU
// over the last 3 s: Pebble has finished the flushes and compactions an
// earlier load left, and anti-entropy the exchanges it caused. Figures
// compared with each other (a baseline and the same load during a repair)
// then start from the same state. After limit it gives up, reporting how
// busy the nodes still were.
func (bc *benchCluster) waitQuiet(ctx context.Context, limit time.Duration) (time.Duration, error) {
	const window = 3 * time.Second
	t0 := time.Now()
	type sample struct {
		at  time.Time
		cpu time.Duration
	}
	var hist []sample
	cpu := func() time.Duration {
		var sum time.Duration
		for _, p := range bc.procs() {
			if pid := p.pid(); pid > 0 { // 0: not running (and /proc/self)
				if s, err := benchutil.ReadProc(pid); err == nil {
					sum += s.CPU
				}
			}
		}
		return sum
	}
	busy := 0.0
	err := poll.Until(ctx, limit, 500*time.Millisecond, "quiet nodes", func() (bool, string) {
		now := sample{time.Now(), cpu()}
		hist = append(hist, now)
		for len(hist) > 1 && now.at.Sub(hist[1].at) >= window {
			hist = hist[1:]
		}
		if el := now.at.Sub(hist[0].at); el >= window {
			busy = (now.cpu - hist[0].cpu).Seconds() / el.Seconds()
			return busy < quietCores, fmt.Sprintf("the nodes used %.2f cores over the last %v", busy, window)
		}
		return false, "measuring"
	})
	return time.Since(t0), err
}
