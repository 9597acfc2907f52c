// Package localcluster runs a cluster of real `mnemo node` processes on
// loopback, for the end-to-end tests, `mnemo demo`, `mnemo bench` and the
// chaos harness. It kills, restarts, pauses and wipes nodes the way an
// operator (or a failure) would, and it only ever signals processes it
// started, by PID.
//
// Children are started with Pdeathsig, so they die with the process that
// started them even if it is killed; Close stops them all and is
// idempotent.
package localcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/poll"
)

// Options configure a cluster.
type Options struct {
	// Binary is the mnemo executable. Required (see Build).
	Binary string
	// Dir holds each node's data directory and log file. Required.
	Dir string
	// Nodes is how many nodes to start. Default 3.
	Nodes int
	// Args are extra `mnemo node` flags for every node.
	Args []string
	// NodeArgs returns extra flags for node i (0-based), after Args.
	NodeArgs func(i int) []string
	// HTTP gives every node an admin port. RESP likewise a Redis port.
	HTTP, RESP bool
	// Env adds environment variables to every node.
	Env []string
	// Wrap, when set, returns the command node i runs under, before the
	// binary (chaos: `ip netns exec <ns>`). The wrapper must exec the node
	// in place, so that the pid signalled is the node's.
	Wrap func(i int) []string
	// PIDFiles writes each running node's pid to its Proc.PIDFile, for
	// operators' scripts, and removes it when the process has exited
	// (unless something else has replaced it).
	PIDFiles bool
	// ClientTLS, when set, is the TLS config of the clients Client and
	// WaitConverged make (nodes with --security on); see SetClientTLS.
	ClientTLS *tls.Config
}

// Proc is one node process.
type Proc struct {
	Index int
	ID    string
	// Addresses, fixed for the life of the cluster so a restart comes back
	// where it was.
	RPC, Gossip, HTTP, RESP string
	DataDir, LogFile        string
	// PIDFile is where Options.PIDFiles keeps the running pid.
	PIDFile string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has been waited for
	paused bool
	exited bool // Start ran it and it has exited since
}

// Exited reports whether the process Start last ran has exited. Processes
// run by others on the Proc's addresses (the chaos harness) do not count.
func (p *Proc) Exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Running reports whether the process is up (possibly paused).
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// PID returns the running process's pid, or 0.
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Cluster is a set of node processes.
type Cluster struct {
	opts Options
	// name is the cluster's --cluster-name, unique per Cluster: test
	// clusters on one machine all call their nodes node-1, node-2, ...,
	// and a node dialing a port since taken by another cluster's node
	// must not merge the two.
	name  string
	Nodes []*Proc
	once  sync.Once
	// tlsMu guards opts.ClientTLS, which SetClientTLS changes.
	tlsMu sync.Mutex
}

// clusterSeq numbers the clusters of this process, for their names.
var clusterSeq atomic.Uint64

// Build compiles mnemo into dir and returns the binary's path. With race
// true it is built with the race detector.
func Build(dir string, race bool) (string, error) {
	out := filepath.Join(dir, "mnemo")
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/mnemo-kv/mnemo/cmd/mnemo")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("localcluster: go build: %v\n%s", err, b)
	}
	return out, nil
}

// FindBinary returns $MNEMO_BIN when set (make test sets it to the binary
// it just built), else builds one into dir.
func FindBinary(dir string) (string, error) {
	if b := os.Getenv("MNEMO_BIN"); b != "" {
		return b, nil
	}
	return Build(dir, false)
}

// Ports are drawn below the kernel's ephemeral range (32768-60999 by
// default): a port picked from that range by listening on port 0 is free
// only until the node binds it, and meanwhile any outgoing connection on
// the machine may take it as its local port; with clusters starting in
// parallel tests that happened, and a node failed to start. Below the
// range only another listener can take it, and ports handed out by this
// process are never handed out twice.
const (
	portLow  = 20000
	portHigh = 32000
)

var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// FreePort returns a 127.0.0.1 address whose port is free for both TCP and
// UDP (memberlist binds both), below the ephemeral range.
func FreePort() (string, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	for range 500 {
		port := portLow + rand.IntN(portHigh-portLow)
		if handedOut.ports[port] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		handedOut.ports[port] = true
		return addr, nil
	}
	return "", errors.New("localcluster: no free port between 20000 and 32000")
}

// New allocates addresses and directories for the nodes without starting
// them; Start or StartAll runs them.
func New(opts Options) (*Cluster, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Binary == "" || opts.Dir == "" {
		return nil, errors.New("localcluster: Binary and Dir are required")
	}
	c := &Cluster{opts: opts, name: fmt.Sprintf("mnemo-local/%d/%d/%d", os.Getpid(), time.Now().UnixNano(), clusterSeq.Add(1))}
	for range opts.Nodes {
		if _, err := c.Add(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Add allocates one more node (not started; Start it) and returns its
// index. It joins through the nodes allocated before it.
func (c *Cluster) Add() (int, error) {
	i := len(c.Nodes)
	p := &Proc{Index: i, ID: fmt.Sprintf("node-%d", i+1)}
	var err error
	if p.RPC, err = FreePort(); err != nil {
		return 0, err
	}
	if p.Gossip, err = FreePort(); err != nil {
		return 0, err
	}
	if c.opts.HTTP {
		if p.HTTP, err = FreePort(); err != nil {
			return 0, err
		}
	}
	if c.opts.RESP {
		if p.RESP, err = FreePort(); err != nil {
			return 0, err
		}
	}
	p.DataDir = filepath.Join(c.opts.Dir, p.ID)
	p.LogFile = filepath.Join(c.opts.Dir, p.ID+".log")
	p.PIDFile = filepath.Join(c.opts.Dir, p.ID+".pid")
	c.Nodes = append(c.Nodes, p)
	return i, nil
}

// StartAll starts every node and waits until each sees all of them alive.
func (c *Cluster) StartAll(ctx context.Context) error {
	for i := range c.Nodes {
		if err := c.Start(i); err != nil {
			return err
		}
	}
	return c.WaitConverged(ctx, c.Indexes()...)
}

// Indexes returns 0..n-1.
func (c *Cluster) Indexes() []int {
	out := make([]int, len(c.Nodes))
	for i := range out {
		out[i] = i
	}
	return out
}

// Args returns the flags node i is started with.
func (c *Cluster) Args(i int) []string {
	p := c.Nodes[i]
	var join []string
	for _, q := range c.Nodes {
		join = append(join, q.Gossip)
	}
	args := []string{"node", "--id", p.ID, "--data", p.DataDir, "--rpc", p.RPC, "--gossip", p.Gossip,
		"--join", strings.Join(join, ","), "--log-format", "json", "--cluster-name", c.name}
	if p.HTTP != "" {
		args = append(args, "--http", p.HTTP)
	}
	if p.RESP != "" {
		args = append(args, "--resp", p.RESP)
	}
	args = append(args, c.opts.Args...)
	if c.opts.NodeArgs != nil {
		args = append(args, c.opts.NodeArgs(i)...)
	}
	return args
}

// Command returns node i's full command line: Options.Wrap's prefix, the
// binary and Args(i).
func (c *Cluster) Command(i int) []string {
	var argv []string
	if c.opts.Wrap != nil {
		argv = append(argv, c.opts.Wrap(i)...)
	}
	return append(append(argv, c.opts.Binary), c.Args(i)...)
}

// ErrRunning is returned by Start for a node that is running.
var ErrRunning = errors.New("localcluster: node is already running")

// Start starts node i (again) on its data directory and addresses.
func (c *Cluster) Start(i int) error {
	p := c.Nodes[i]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%w: %s", ErrRunning, p.ID)
	}
	logf, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	argv := c.Command(i)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), c.opts.Env...)
	// Pdeathsig kills the child if the process that started it dies
	// without cleaning up (a test binary killed by its timeout). Close is
	// the normal cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("localcluster: start %s: %w", p.ID, err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	if c.opts.PIDFiles {
		_ = os.WriteFile(p.PIDFile, []byte(pid+"\n"), 0o644) // best effort: for scripts
	}
	p.cmd = cmd
	p.paused = false
	p.exited = false
	done := make(chan struct{})
	p.done = done
	go func() { // owned by the Proc: ends when the process does; Close kills it
		cmd.Wait()
		logf.Close()
		p.mu.Lock()
		if p.cmd == cmd {
			p.cmd = nil
			p.exited = true
		}
		p.mu.Unlock()
		if c.opts.PIDFiles {
			// Remove the pid file unless someone (an operator's restart
			// script) has replaced it: a stale pid could name another
			// process by the time a script reads it.
			if b, err := os.ReadFile(p.PIDFile); err == nil && strings.TrimSpace(string(b)) == pid {
				_ = os.Remove(p.PIDFile)
			}
		}
		close(done)
	}()
	return nil
}

// Signal sends sig to node i; with wait > 0 it waits that long for the
// process to exit, then kills it (and says so). A paused node is continued
// first unless sig is SIGKILL (which ends a stopped process as it is, as a
// crash would), SIGSTOP or SIGCONT: a stopped process acts on other
// signals only once continued.
func (c *Cluster) Signal(i int, sig syscall.Signal, wait time.Duration) error {
	p := c.Nodes[i]
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	if cmd != nil && p.paused && sig != syscall.SIGCONT && sig != syscall.SIGSTOP && sig != syscall.SIGKILL {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		p.paused = false
	}
	switch sig {
	case syscall.SIGSTOP:
		p.paused = cmd != nil
	case syscall.SIGCONT:
		p.paused = false
	}
	p.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("localcluster: %s is not running", p.ID)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("localcluster: signal %s: %w", p.ID, err)
	}
	if wait == 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("localcluster: %s did not exit within %v after %v; killed", p.ID, wait, sig)
	}
}

// Kill stops node i with SIGKILL (a crash) and waits for it.
func (c *Cluster) Kill(i int) error { return c.Signal(i, syscall.SIGKILL, 10*time.Second) }

// Stop stops node i with SIGTERM (a clean shutdown) and waits for it.
func (c *Cluster) Stop(i int) error { return c.Signal(i, syscall.SIGTERM, 15*time.Second) }

// Pause freezes node i with SIGSTOP.
func (c *Cluster) Pause(i int) error { return c.Signal(i, syscall.SIGSTOP, 0) }

// Resume continues node i after Pause.
func (c *Cluster) Resume(i int) error { return c.Signal(i, syscall.SIGCONT, 0) }

// Wipe deletes node i's data directory; the node must be stopped.
func (c *Cluster) Wipe(i int) error {
	p := c.Nodes[i]
	if p.Running() {
		return fmt.Errorf("localcluster: %s is running; stop it before wiping", p.ID)
	}
	return os.RemoveAll(p.DataDir)
}

// Addrs returns every node's RPC address.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, p := range c.Nodes {
		out = append(out, p.RPC)
	}
	return out
}

// Client returns an SDK client of the given nodes (all when none given).
func (c *Cluster) Client(idx ...int) (*client.Client, error) {
	addrs := c.Addrs()
	if len(idx) > 0 {
		addrs = nil
		for _, i := range idx {
			addrs = append(addrs, c.Nodes[i].RPC)
		}
	}
	c.tlsMu.Lock()
	t := c.opts.ClientTLS
	c.tlsMu.Unlock()
	return client.NewWithConfig(client.Config{Addrs: addrs, TLS: t})
}

// SetClientTLS changes the TLS config of the clients made from now on
// (nil: plaintext), as an operator switches clients during a rolling
// enable of security.
func (c *Cluster) SetClientTLS(t *tls.Config) {
	c.tlsMu.Lock()
	c.opts.ClientTLS = t
	c.tlsMu.Unlock()
}

// WaitConverged waits until each of the given nodes answers status and sees
// exactly the given nodes alive and active in the ring (and the others not
// alive). When ctx ends it returns an error with the last thing seen; when
// one of them exits, one with the end of its log.
func (c *Cluster) WaitConverged(ctx context.Context, alive ...int) error {
	want := map[string]bool{}
	for _, i := range alive {
		want[c.Nodes[i].ID] = true
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	defer cl.Close()
	// A node that exits ends the wait at once: pctx is cancelled with the
	// reason in exited.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var exited error
	err = poll.Until(pctx, 0, 50*time.Millisecond, "localcluster: cluster converged", func() (bool, string) {
		for _, i := range alive {
			if c.Nodes[i].Exited() {
				exited = fmt.Errorf("localcluster: %s has exited; the end of its log:\n%s", c.Nodes[i].ID, c.Nodes[i].LogTail(5))
				cancel()
				return false, exited.Error()
			}
			sctx, cancel := context.WithTimeout(pctx, time.Second)
			st, err := cl.Status(sctx, client.Node(c.Nodes[i].RPC))
			cancel()
			if err != nil {
				return false, fmt.Sprintf("%s: %v", c.Nodes[i].ID, err)
			}
			seen := 0
			for _, m := range st.Members {
				if (m.Liveness == "alive") != want[m.ID] {
					return false, fmt.Sprintf("%s sees %s %s", c.Nodes[i].ID, m.ID, m.Liveness)
				}
				if want[m.ID] && m.Ring != "active" {
					return false, fmt.Sprintf("%s sees %s %s in the ring", c.Nodes[i].ID, m.ID, m.Ring)
				}
				if want[m.ID] {
					seen++
				}
			}
			if seen != len(want) {
				return false, fmt.Sprintf("%s sees %d of %d members", c.Nodes[i].ID, seen, len(want))
			}
		}
		return true, ""
	})
	if exited != nil {
		return exited
	}
	return err
}

// Close kills every node still running and waits for them. Idempotent.
func (c *Cluster) Close() {
	c.once.Do(func() {
		for i, p := range c.Nodes {
			if p.Running() {
				c.Kill(i)
			}
		}
	})
}

// StopAll stops every running node cleanly (SIGTERM), for demos.
func (c *Cluster) StopAll() error {
	var errs []error
	for i, p := range c.Nodes {
		if p.Running() {
			errs = append(errs, c.Stop(i))
		}
	}
	return errors.Join(errs...)
}

// LogTail returns the last n lines of the node's log file.
func (p *Proc) LogTail(n int) string {
	b, err := os.ReadFile(p.LogFile)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// RunTests is the TestMain of a package whose tests start real nodes: it
// sets *bin to FindBinary's binary (built into a temporary directory when
// $MNEMO_BIN is unset), runs the tests and removes the directory. It
// returns the exit code; the caller may check more (goleak) before
// os.Exit. A binary that cannot be had ends the run with code 2.
func RunTests(m *testing.M, name string, bin *string) int {
	dir, err := os.MkdirTemp("", "mnemo-"+name+"-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	if *bin, err = FindBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return m.Run()
}
