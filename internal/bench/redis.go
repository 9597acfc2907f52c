package bench

// redis-benchmark phases (issue 6): SET and GET against node-1's Redis port
// and against a local redis-server started here, in the same run, each
// with and without an fsync per write, and the ratios mnemo/redis.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mnemo-kv/mnemo/internal/benchutil"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
	"github.com/mnemo-kv/mnemo/internal/poll"
)

// The pairings of the ratio table. The first is issue 6's target: mnemo as
// shipped (fsync before every ack) against a redis-server without
// persistence, the usual way it is benchmarked.
const (
	benchPairingShipped = "as shipped: mnemo --sync always / redis no persistence"
	benchPairingNoFsync = "no fsync: mnemo --sync none / redis no persistence"
	benchPairingFsync   = "fsync per write: mnemo --sync always / redis appendfsync always"
)

// benchRedisConfigs are the local redis-server's two configurations.
var benchRedisConfigs = []struct {
	name  string
	fsync bool
	args  []string
}{
	{"no persistence", false, []string{"--save", "", "--appendonly", "no"}},
	{"appendfsync always", true, []string{"--save", "", "--appendonly", "yes", "--appendfsync", "always"}},
}

const benchRedisInstall = "apt-get install -y redis-server redis-tools"

// redisPhases measures mnemo's Redis port (bc as started, then restarted
// with --sync none) and a local redis-server.
func (b *bench) redisPhases(ctx context.Context, bc *benchCluster) error {
	o := b.o
	rbench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		b.skip("redis: redis-benchmark not found (" + benchRedisInstall + ")")
		return nil
	}
	mnemoConfig := func(sync string) string { return "N=3 R=2 W=2, --sync " + sync }
	if err := b.redisRuns(ctx, rbench, "mnemo", mnemoConfig(o.Sync), o.Sync == "always", bc.Nodes[0].RESP, bc.procs(), bc); err != nil {
		return err
	}
	if o.Sync != "none" {
		b.progress("redis: restarting the nodes with --sync none")
		bc.setArgs("--sync", "none")
		for i := range bc.Nodes {
			if err := bc.Stop(i); err != nil {
				return err
			}
		}
		for i := range bc.Nodes {
			if err := bc.Start(i); err != nil {
				return err
			}
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := bc.WaitConverged(wctx, bc.Indexes()...)
		cancel()
		if err != nil {
			return err
		}
		if err := b.redisRuns(ctx, rbench, "mnemo", mnemoConfig("none"), false, bc.Nodes[0].RESP, bc.procs(), nil); err != nil {
			return err
		}
	}
	rserver, err := exec.LookPath("redis-server")
	if err != nil {
		b.skip("redis: redis-server not found, no comparison (" + benchRedisInstall + ")")
		return nil
	}
	for _, cfg := range benchRedisConfigs {
		srv, err := startBenchRedis(ctx, rserver, filepath.Join(b.dir, "redis-"+strings.ReplaceAll(cfg.name, " ", "-")), cfg.args)
		if err != nil {
			return err
		}
		err = b.redisRuns(ctx, rbench, "redis", cfg.name, cfg.fsync, srv.addr, []benchProc{{name: "redis-server", pid: srv.pid}}, nil)
		srv.stop()
		if err != nil {
			return err
		}
	}
	b.rep.RedisRatios = benchRedisRatios(b.rep.Redis, o.Sync)
	return nil
}

// redisRuns runs redis-benchmark's SET and GET at each pipeline depth
// against addr, metering procs; with bc, node-1 is profiled during SET at
// the first depth.
func (b *bench) redisRuns(ctx context.Context, rbench, server, config string, fsync bool, addr string, procs []benchProc, bc *benchCluster) error {
	o := b.o
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	for pi, p := range o.RedisPipelines {
		for _, test := range []string{"set", "get"} {
			phase := fmt.Sprintf("redis %s %s -P %d (%s)", server, strings.ToUpper(test), p, config)
			args := []string{"-h", host, "-p", port, "-c", strconv.Itoa(o.RedisClients), "-n", strconv.Itoa(o.RedisRequests),
				"-r", strconv.Itoa(o.RedisKeys), "-d", strconv.Itoa(o.ValueSize), "-P", strconv.Itoa(p), "-t", test, "--csv"}
			var prof func()
			if bc != nil && o.Profile && pi == 0 && test == "set" {
				// Roughly the length of the run at the SDK's put rate.
				prof = b.profile(ctx, bc, 0, phase, o.Duration)
			}
			res, _, err := b.redisBenchmark(ctx, rbench, phase, args, procs, o.RedisRequests)
			if prof != nil {
				prof()
			}
			if err != nil {
				return err
			}
			for _, x := range res {
				row := benchRedisRow{Server: server, Config: config, Fsync: fsync, Test: strings.ToUpper(x.Test), Pipeline: p,
					Requests: o.RedisRequests, Clients: o.RedisClients, RPS: x.RPS, AvgMs: x.AvgMs, P50Ms: x.P50Ms, P99Ms: x.P99Ms, MaxMs: x.MaxMs}
				b.rep.Redis = append(b.rep.Redis, row)
				b.progress("%s: %.0f ops/s, p50 %.3f ms, p99 %.3f ms", phase, row.RPS, row.P50Ms, row.P99Ms)
			}
		}
	}
	return nil
}

// redisBenchmark runs redis-benchmark with args (which must include --csv)
// as the phase called phase, metering procs over it; ops is the requests
// it makes (-n). It returns the parsed CSV lines and the phase's resources
// (also added to the report).
func (b *bench) redisBenchmark(ctx context.Context, rbench, phase string, args []string, procs []benchProc, ops int) ([]benchutil.RedisResult, benchPhaseResources, error) {
	m := b.startMeter(phase, procs)
	rctx, cancel := context.WithTimeout(ctx, 2*b.o.WaitTimeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, rbench, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var child time.Duration
	if cmd.ProcessState != nil {
		child = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	res := m.stop(ops, child)
	if err != nil {
		return nil, res, fmt.Errorf("%s: redis-benchmark %s: %v: %s", phase, benchShortArgs(args), err, strings.TrimSpace(errb.String()))
	}
	rows, err := benchutil.ParseRedisBenchmarkCSV(&out)
	if err != nil {
		return nil, res, fmt.Errorf("%s: %w (stderr: %s)", phase, err, strings.TrimSpace(errb.String()))
	}
	return rows, res, nil
}

// benchShortArgs joins args for an error message, each cut to 40 bytes
// (a custom command's value would fill the line).
func benchShortArgs(args []string) string {
	short := make([]string, len(args))
	for i, a := range args {
		if len(a) > 40 {
			a = a[:37] + "..."
		}
		short[i] = a
	}
	return strings.Join(short, " ")
}

// benchRedisRatios pairs mnemo's and redis's rows; sdkSync is the --sync mnemo
// ran with first.
func benchRedisRatios(rows []benchRedisRow, sdkSync string) []benchRedisRatio {
	find := func(server, config, test string, p int) (float64, bool) {
		for _, r := range rows {
			if r.Server == server && r.Test == test && r.Pipeline == p && strings.HasSuffix(r.Config, config) {
				return r.RPS, true
			}
		}
		return 0, false
	}
	pairings := []struct{ name, mnemo, redis string }{
		{benchPairingNoFsync, "--sync none", "no persistence"},
		{benchPairingFsync, "--sync always", "appendfsync always"},
	}
	if sdkSync == "always" {
		pairings = append([]struct{ name, mnemo, redis string }{{benchPairingShipped, "--sync always", "no persistence"}}, pairings...)
	}
	var out []benchRedisRatio
	for _, pr := range pairings {
		for _, r := range rows {
			if r.Server != "mnemo" || !strings.HasSuffix(r.Config, pr.mnemo) {
				continue
			}
			rv, ok := find("redis", pr.redis, r.Test, r.Pipeline)
			if !ok || rv == 0 {
				continue
			}
			out = append(out, benchRedisRatio{Pairing: pr.name, Test: r.Test, Pipeline: r.Pipeline, Mnemo: r.RPS, Redis: rv, Ratio: r.RPS / rv})
		}
	}
	return out
}

// benchRedisServer is a redis-server process started by the bench.
type benchRedisServer struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

func (s *benchRedisServer) pid() int {
	select {
	case <-s.done:
		return 0
	default:
		return s.cmd.Process.Pid
	}
}

// startBenchRedis starts redis-server on a free loopback port with its
// files in dir, and waits until it answers PING.
func startBenchRedis(ctx context.Context, bin, dir string, args []string) (*benchRedisServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := localcluster.FreePort()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	all := append([]string{"--port", port, "--bind", "127.0.0.1", "--dir", dir, "--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log")}, args...)
	cmd := exec.Command(bin, all...)
	// Like the nodes: the server dies with the bench if the bench is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	s := &benchRedisServer{addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	err = poll.Until(ctx, 10*time.Second, 20*time.Millisecond, "redis-server answering PING", func() (bool, string) {
		select {
		case <-s.done:
			return false, "redis-server exited; see " + filepath.Join(dir, "redis.log")
		default:
		}
		return benchRedisPing(addr)
	})
	if err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func benchRedisPing(addr string) (bool, string) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false, err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false, err.Error()
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return false, err.Error()
	}
	return strings.HasPrefix(line, "+PONG"), strings.TrimSpace(line)
}

// stop ends the server by its pid (SIGTERM, then SIGKILL after 10 s) and
// waits for it.
func (s *benchRedisServer) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}
