package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mnemo-kv/mnemo/internal/localcluster"
)

// nodes runs the cluster's node processes, on loopback or each in its own
// network namespace: localcluster runs and signals them (its Wrap puts
// `ip netns exec` in front, which execs the node in place, so the pid is
// the node's; its pid files serve the operator scripts). What is chaos's
// own is here: the restart scripts, and leaving alone a node an operator
// restarted by hand.
type nodes struct {
	lc *localcluster.Cluster
}

// errExternal is Start on a node an operator restarted by hand
// (restart.sh): the harness leaves that process alone.
var errExternal = errors.New("chaos: node runs outside the harness")

// newNodes runs lc's nodes, which must have been made with Wrap (if any),
// PIDFiles and GOTRACEBACK=all (see nodeOptions).
func newNodes(lc *localcluster.Cluster) *nodes { return &nodes{lc: lc} }

// nodeOptions completes the localcluster options of a chaos cluster:
// wrap (nil: none) runs each node in its namespace, pid files serve the
// scripts, and GOTRACEBACK=all makes a SIGQUIT (dumpStacks) print every
// goroutine to the node's log.
func nodeOptions(opts localcluster.Options, wrap func(i int) []string) localcluster.Options {
	opts.Wrap = wrap
	opts.PIDFiles = true
	opts.Env = append(opts.Env, "GOTRACEBACK=all")
	return opts
}

// writeScripts writes node i's restart command (<id>.cmd) for the operator
// scripts.
func (ns *nodes) writeScripts(i int) error {
	p := ns.lc.Nodes[i]
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Restarts " + p.ID + " as the chaos harness started it (see chaos/restart.sh).\nexec")
	for _, a := range ns.lc.Command(i) {
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
	b, err := os.ReadFile(p.PIDFile)
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

// Start starts node i on its data directory and addresses, unless it
// runs (localcluster.ErrRunning) or an operator restarted it by hand
// (errExternal).
func (ns *nodes) Start(i int) error {
	p := ns.lc.Nodes[i]
	if p.Running() {
		return fmt.Errorf("%w: %s", localcluster.ErrRunning, p.ID)
	}
	if pid := ns.external(i); pid != 0 {
		return fmt.Errorf("%w: %s is pid %d (restart.sh?); leaving it running", errExternal, p.ID, pid)
	}
	if err := ns.writeScripts(i); err != nil {
		return err
	}
	return ns.lc.Start(i)
}

// Running reports whether node i's process (started by the harness) is up,
// possibly paused.
func (ns *nodes) Running(i int) bool { return ns.lc.Nodes[i].Running() }

func (ns *nodes) pid(i int) int { return ns.lc.Nodes[i].PID() }

// Kill stops node i with SIGKILL (a crash) and waits for it.
func (ns *nodes) Kill(i int) error { return ns.lc.Kill(i) }

// Pause freezes node i (SIGSTOP).
func (ns *nodes) Pause(i int) error { return ns.lc.Pause(i) }

// Resume continues node i (SIGCONT).
func (ns *nodes) Resume(i int) error { return ns.lc.Resume(i) }

// Wipe deletes node i's data directory; the node must be down.
func (ns *nodes) Wipe(i int) error { return ns.lc.Wipe(i) }

// dumpStacks makes every running node print its goroutines to its log
// and exit (SIGQUIT), for a cluster that did not settle.
func (ns *nodes) dumpStacks() {
	for i, p := range ns.lc.Nodes {
		if p.Running() {
			_ = ns.lc.Signal(i, syscall.SIGQUIT, 5*time.Second)
		}
	}
}

// Close kills every node the harness started and waits for them.
// Idempotent.
func (ns *nodes) Close() { ns.lc.Close() }

// logTail returns the last n lines of node i's log.
func (ns *nodes) logTail(i, n int) string { return ns.lc.Nodes[i].LogTail(n) }

// nodeDir is where the nodes' data, logs and pid files live.
func nodeDir(dir string) string { return filepath.Join(dir, "nodes") }
