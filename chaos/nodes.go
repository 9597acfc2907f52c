package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mnemo-kv/mnemo/internal/localcluster"
)

// nodes runs the cluster's node processes, on loopback or each in its own
// network namespace (through `ip netns exec`, which execs the node in
// place, so the pid is the node's). The addresses, directories and flags
// are localcluster's (Cluster.Args); the process lifecycle is here because
// localcluster has no hook to wrap a node's command. Like localcluster, it
// only ever signals processes it started, by pid, and starts them with
// Pdeathsig so they die with the harness.
type nodes struct {
	lc     *localcluster.Cluster
	binary string
	// wrap returns node i's command prefix; nil runs the binary directly.
	wrap  func(i int) []string
	procs []*proc
}

// proc is one node's process.
type proc struct {
	// mu guards cmd, done and paused.
	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed once the process has been waited for
	paused bool
}

// errRunning is Start on a node that is running.
var errRunning = errors.New("chaos: node is running")

// errExternal is Start on a node an operator restarted by hand
// (restart.sh): the harness leaves that process alone.
var errExternal = errors.New("chaos: node runs outside the harness")

func newNodes(lc *localcluster.Cluster, binary string, wrap func(i int) []string) *nodes {
	ns := &nodes{lc: lc, binary: binary, wrap: wrap}
	for range lc.Nodes {
		ns.procs = append(ns.procs, &proc{})
	}
	return ns
}

// command is node i's full command line.
func (ns *nodes) command(i int) []string {
	var argv []string
	if ns.wrap != nil {
		argv = append(argv, ns.wrap(i)...)
	}
	return append(append(argv, ns.binary), ns.lc.Args(i)...)
}

func pidFile(p *localcluster.Proc) string { return strings.TrimSuffix(p.LogFile, ".log") + ".pid" }

// writeScripts writes node i's restart command (<id>.cmd) for the operator
// scripts.
func (ns *nodes) writeScripts(i int) error {
	p := ns.lc.Nodes[i]
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Restarts " + p.ID + " as the chaos harness started it (see chaos/restart.sh).\nexec")
	for _, a := range ns.command(i) {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString(" >>" + shellQuote(p.LogFile) + " 2>&1\n")
	return os.WriteFile(strings.TrimSuffix(p.LogFile, ".log")+".cmd", []byte(b.String()), 0o755)
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// external returns the pid of a node i process the harness did not start
// (an operator's restart.sh), or 0.
func (ns *nodes) external(i int) int {
	p := ns.lc.Nodes[i]
	b, err := os.ReadFile(pidFile(p))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || pid == ns.pid(i) {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte("\x00--data\x00"+p.DataDir+"\x00")) {
		return 0
	}
	return pid
}

// Start starts node i on its data directory and addresses.
func (ns *nodes) Start(i int) error {
	p, pr := ns.lc.Nodes[i], ns.procs[i]
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.cmd != nil {
		return fmt.Errorf("%w: %s", errRunning, p.ID)
	}
	if pid := ns.external(i); pid != 0 {
		return fmt.Errorf("%w: %s is pid %d (restart.sh?); leaving it running", errExternal, p.ID, pid)
	}
	if err := ns.writeScripts(i); err != nil {
		return err
	}
	logf, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	argv := ns.command(i)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// A SIGQUIT (dumpStacks) then prints every goroutine to the log.
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	// Pdeathsig: the node dies with the harness even if the harness is
	// killed; Close is the normal way.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("chaos: start %s: %w", p.ID, err)
	}
	pid := cmd.Process.Pid
	os.WriteFile(pidFile(p), []byte(strconv.Itoa(pid)+"\n"), 0o644)
	done := make(chan struct{})
	pr.cmd, pr.done, pr.paused = cmd, done, false
	go func() {
		cmd.Wait()
		logf.Close()
		pr.mu.Lock()
		if pr.cmd == cmd {
			pr.cmd = nil
		}
		pr.mu.Unlock()
		// Remove the pid file unless a restart.sh has replaced it.
		if b, err := os.ReadFile(pidFile(p)); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid) {
			os.Remove(pidFile(p))
		}
		close(done)
	}()
	return nil
}

// Running reports whether node i's process (started by the harness) is up,
// possibly paused.
func (ns *nodes) Running(i int) bool {
	pr := ns.procs[i]
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.cmd != nil
}

func (ns *nodes) pid(i int) int {
	pr := ns.procs[i]
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.cmd == nil {
		return 0
	}
	return pr.cmd.Process.Pid
}

// signal sends sig to node i; with wait > 0 it waits that long for the
// process to exit, then kills it.
func (ns *nodes) signal(i int, sig syscall.Signal, wait time.Duration) error {
	p, pr := ns.lc.Nodes[i], ns.procs[i]
	pr.mu.Lock()
	cmd, done := pr.cmd, pr.done
	if cmd != nil && pr.paused && sig != syscall.SIGSTOP && sig != syscall.SIGCONT && sig != syscall.SIGKILL {
		// A stopped process acts on SIGTERM only once continued.
		cmd.Process.Signal(syscall.SIGCONT)
		pr.paused = false
	}
	switch sig {
	case syscall.SIGSTOP:
		pr.paused = cmd != nil
	case syscall.SIGCONT:
		pr.paused = false
	}
	pr.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("chaos: %s is not running", p.ID)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("chaos: signal %s: %w", p.ID, err)
	}
	if wait == 0 {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("chaos: %s did not exit within %v of %v; killed", p.ID, wait, sig)
	}
}

// Kill stops node i with SIGKILL (a crash) and waits for it.
func (ns *nodes) Kill(i int) error { return ns.signal(i, syscall.SIGKILL, 10*time.Second) }

// Pause freezes node i (SIGSTOP).
func (ns *nodes) Pause(i int) error { return ns.signal(i, syscall.SIGSTOP, 0) }

// Resume continues node i (SIGCONT).
func (ns *nodes) Resume(i int) error { return ns.signal(i, syscall.SIGCONT, 0) }

// Wipe deletes node i's data directory; the node must be down.
func (ns *nodes) Wipe(i int) error {
	if ns.Running(i) {
		return fmt.Errorf("chaos: %s is running; kill it before wiping", ns.lc.Nodes[i].ID)
	}
	return os.RemoveAll(ns.lc.Nodes[i].DataDir)
}

// dumpStacks makes every running node print its goroutines to its log
// and exit (SIGQUIT), for a cluster that did not settle.
func (ns *nodes) dumpStacks() {
	for i := range ns.procs {
		if ns.Running(i) {
			ns.signal(i, syscall.SIGQUIT, 5*time.Second)
		}
	}
}

// Close kills every node the harness started and waits for them.
// Idempotent.
func (ns *nodes) Close() {
	for i := range ns.procs {
		if ns.Running(i) {
			ns.Kill(i)
		}
	}
}

// logTail returns the last n lines of node i's log.
func (ns *nodes) logTail(i, n int) string {
	b, _ := os.ReadFile(ns.lc.Nodes[i].LogFile)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// nodeDir is where the nodes' data, logs and pid files live.
func nodeDir(dir string) string { return filepath.Join(dir, "nodes") }
