package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Network namespaces, for partitions that cut real traffic.
//
// Each node runs in its own namespace with one end of a veth pair; the
// other ends hang on a bridge in the root namespace, which holds the
// harness's address (.1) on a private /24 of 10.77.0.0/16, so the harness
// reaches every node whatever the partition, as Jepsen's clients do. Node
// i has address .(11+i).
//
// A partition poisons the neighbour (ARP) tables: in a node's namespace,
// each node on the other side gets a permanent entry with an address no
// interface has (netnsBlackholeMAC). Frames to it go out and are dropped
// by every receiver, so packets vanish silently and connections time out,
// as with iptables DROP. Only iproute2 is needed: this machine has neither
// iptables nor nft, and its kernel lacks the tc actions and qdiscs that
// would drop by address. Healing deletes the entries; ARP does the rest.
//
// Every name starts with netnsPrefix, the creating process's pid and a
// letter per run in that process (mnch<pid><run>), at most 15 bytes as
// interface names must be. setupNetns first removes what a run whose
// process is gone left behind.

const (
	netnsPrefix = "mnch"
	// netnsBlackholeMAC is a locally administered address no interface
	// has ("mn" for mnemo).
	netnsBlackholeMAC = "02:6d:6e:00:00:00"
)

// netnsRuns numbers the runs of this process, for unique names.
var netnsRuns atomic.Uint32

// netnsActive holds the name prefixes of this process's live runs.
var netnsActive sync.Map

// netnsNet is the namespaces, bridge and links of one run.
type netnsNet struct {
	name   string // mnch<pid><run>
	bridge string
	subnet string // "10.77.X."
	ns     []string
	hostIf []string
	nodeIf []string
	ips    []string
	// mu guards cut, the node pairs whose traffic is dropped.
	mu  sync.Mutex
	cut map[[2]int]bool
}

// ipCmd runs ip with args and returns its error with ip's stderr.
func ipCmd(args ...string) error {
	cmd := exec.Command("ip", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("chaos: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func ipOutput(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).Output()
	if err != nil {
		return "", fmt.Errorf("chaos: ip %s: %v", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// netnsUsable reports whether namespaces can be used, and why not.
func netnsUsable() (bool, string) {
	if uid := os.Geteuid(); uid != 0 {
		return false, fmt.Sprintf("not root (uid %d): network namespaces need root (CAP_NET_ADMIN, CAP_SYS_ADMIN)", uid)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return false, "iproute2's ip is not installed"
	}
	if _, err := ipOutput("netns", "list"); err != nil {
		return false, err.Error()
	}
	return true, ""
}

var staleName = regexp.MustCompile(`^` + netnsPrefix + `(\d+)([a-z])`)

// stale reports whether name was made by a run that is over: its process
// is gone, or it is this process's and that run ended.
func stale(name string) bool {
	m := staleName.FindStringSubmatch(name)
	if m == nil {
		return false
	}
	pid, err := strconv.Atoi(m[1])
	if err != nil {
		return false
	}
	if pid == os.Getpid() {
		_, live := netnsActive.Load(netnsPrefix + m[1] + m[2])
		return !live
	}
	err = syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}

// cleanStaleNetns removes the namespaces and links of finished runs and
// returns their names.
func cleanStaleNetns() []string {
	var removed []string
	if out, err := ipOutput("-o", "link", "show"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if strings.HasPrefix(name, netnsPrefix) && stale(name) && ipCmd("link", "del", name) == nil {
				removed = append(removed, name)
			}
		}
	}
	if out, err := ipOutput("netns", "list"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && strings.HasPrefix(f[0], netnsPrefix) && stale(f[0]) && ipCmd("netns", "del", f[0]) == nil {
				removed = append(removed, f[0])
			}
		}
	}
	return removed
}

// freeSubnet picks a 10.77.X.0/24 no interface address or route uses.
func freeSubnet() (string, error) {
	used := map[string]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			used[a.String()] = true
		}
	}
	routes, _ := ipOutput("-4", "route", "show", "table", "all")
	for x := range 256 {
		prefix := fmt.Sprintf("10.77.%d.", x)
		taken := strings.Contains(routes, prefix)
		for a := range used {
			taken = taken || strings.HasPrefix(a, prefix)
		}
		if !taken {
			return prefix, nil
		}
	}
	return "", errors.New("chaos: no free /24 in 10.77.0.0/16 for the namespaces")
}

// setupNetns makes n namespaces on a new bridge. On error it removes what
// it made.
func setupNetns(n int) (_ *netnsNet, removed []string, err error) {
	removed = cleanStaleNetns()
	run := netnsRuns.Add(1) - 1
	name := fmt.Sprintf("%s%d%c", netnsPrefix, os.Getpid(), 'a'+rune(run%26))
	netnsActive.Store(name, true)
	nn := &netnsNet{name: name, bridge: name + "b", cut: map[[2]int]bool{}}
	defer func() {
		if err != nil {
			nn.Close()
		}
	}()
	if nn.subnet, err = freeSubnet(); err != nil {
		return nil, removed, err
	}
	steps := [][]string{
		{"link", "add", nn.bridge, "type", "bridge"},
		{"addr", "add", nn.subnet + "1/24", "dev", nn.bridge},
		{"link", "set", nn.bridge, "up"},
	}
	for i := range n {
		ns, h, c, ip := fmt.Sprintf("%sn%d", name, i), fmt.Sprintf("%sh%d", name, i), fmt.Sprintf("%sc%d", name, i), fmt.Sprintf("%s%d", nn.subnet, 11+i)
		nn.ns, nn.hostIf, nn.nodeIf, nn.ips = append(nn.ns, ns), append(nn.hostIf, h), append(nn.nodeIf, c), append(nn.ips, ip)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"link", "add", h, "type", "veth", "peer", "name", c},
			[]string{"link", "set", h, "master", nn.bridge},
			[]string{"link", "set", h, "up"},
			[]string{"link", "set", c, "netns", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", ns, "addr", "add", ip + "/24", "dev", c},
			[]string{"-n", ns, "link", "set", c, "up"},
		)
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return nil, removed, err
		}
	}
	return nn, removed, nil
}

// wrap is node i's command prefix: run it in its namespace.
func (nn *netnsNet) wrap(i int) []string { return []string{"ip", "netns", "exec", nn.ns[i]} }

// String describes the network for the report.
func (nn *netnsNet) String() string {
	return fmt.Sprintf("namespaces %sn0..%d on bridge %s, %s0/24", nn.name, len(nn.ns)-1, nn.bridge, nn.subnet)
}

// Partition drops all traffic between the nodes of side and the others.
func (nn *netnsNet) Partition(side []int) error {
	in := map[int]bool{}
	for _, i := range side {
		in[i] = true
	}
	nn.mu.Lock()
	defer nn.mu.Unlock()
	var errs []error
	for a := range nn.ns {
		for b := range nn.ns {
			if !in[a] || in[b] {
				continue
			}
			for _, p := range [][2]int{{a, b}, {b, a}} {
				errs = append(errs, ipCmd("-n", nn.ns[p[0]], "neigh", "replace", nn.ips[p[1]], "lladdr", netnsBlackholeMAC, "dev", nn.nodeIf[p[0]], "nud", "permanent"))
				nn.cut[p] = true
			}
		}
	}
	return errors.Join(errs...)
}

// Heal restores all traffic between the nodes.
func (nn *netnsNet) Heal() error {
	nn.mu.Lock()
	defer nn.mu.Unlock()
	var errs []error
	for i := range nn.ns {
		errs = append(errs, ipCmd("-n", nn.ns[i], "neigh", "flush", "dev", nn.nodeIf[i], "nud", "permanent"))
	}
	clear(nn.cut)
	return errors.Join(errs...)
}

// Close removes the links, namespaces and bridge. Idempotent; the nodes
// should be stopped first (a namespace a process still runs in lives on
// until it exits, cut off).
func (nn *netnsNet) Close() error {
	var errs []error
	for i := range nn.ns {
		ipCmd("link", "del", nn.hostIf[i]) // may be gone with its peer
		if err := ipCmd("netns", "del", nn.ns[i]); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	if err := ipCmd("link", "del", nn.bridge); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	netnsActive.Delete(nn.name)
	return errors.Join(errs...)
}

// bridgeFilterHint explains a cluster that cannot converge in namespaces
// when bridged traffic passes the host's iptables (br_netfilter), where a
// FORWARD policy of DROP (Docker sets one) cuts the nodes off.
func bridgeFilterHint() string {
	b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables")
	if err != nil || strings.TrimSpace(string(b)) != "1" {
		return ""
	}
	return " (net.bridge.bridge-nf-call-iptables=1: if the host's iptables FORWARD chain drops, bridged traffic between namespaces is lost; try --netns off)"
}
