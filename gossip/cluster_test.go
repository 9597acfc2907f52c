package gossip

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/internal/testutil"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"
)

// This file runs real memberlist over loopback: several Gossip instances in
// one process, each on its own 127.0.0.1 port.

// patience bounds every wait for a cluster condition. It is generous: a
// wait ends as soon as its condition holds, so it costs nothing when things
// work, and the tests report the time each step actually took. It only
// keeps a heavily loaded machine (a -race binary starved of CPU, so that
// memberlist's sub-second timers misfire and members flap) from failing
// a test that would succeed a few seconds later.
const patience = 20 * time.Second

// eventually polls cond until it holds or within has passed; on timeout it
// fails the test with what cond last reported. It returns how long it took.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	testutil.Eventually(t, within, what, cond)
	return time.Since(start)
}

// recorded is one event as an Events handler received it.
type recorded struct {
	kind eventKind
	m    Member
	at   time.Time
}

// recorder is an Events that keeps everything it receives.
type recorder struct {
	mu     sync.Mutex
	events []recorded
}

func (r *recorder) add(k eventKind, m Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, recorded{kind: k, m: m, at: time.Now()})
}

func (r *recorder) NodeAlive(m Member)    { r.add(evAlive, m) }
func (r *recorder) NodeDead(m Member)     { r.add(evDead, m) }
func (r *recorder) NodeRejoined(m Member) { r.add(evRejoined, m) }
func (r *recorder) NodeUpdated(m Member)  { r.add(evUpdated, m) }

// find returns the first event of kind about id at or after since.
func (r *recorder) find(kind eventKind, id string, since time.Time) (recorded, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.kind == kind && e.m.ID == id && !e.at.Before(since) {
			return e, true
		}
	}
	return recorded{}, false
}

// about lists the events about id, for failure messages.
func (r *recorder) about(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.m.ID == id {
			out = append(out, fmt.Sprintf("%s(%s boot=%x)", e.kind, e.m.State, e.m.BootID))
		}
	}
	return "[" + strings.Join(out, " ") + "]"
}

// gset is a toy StateDelegate: a grow-only set of strings, encoded as its
// sorted members, one per line.
type gset struct {
	mu    sync.Mutex
	items map[string]bool
}

func newGset() *gset { return &gset{items: map[string]bool{}} }

func (s *gset) add(items ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		s.items[it] = true
	}
}

func (s *gset) hasAll(items ...string) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	missing := 0
	for _, it := range items {
		if !s.items[it] {
			missing++
		}
	}
	return missing == 0, fmt.Sprintf("%d of %d items missing (%d held)", missing, len(items), len(s.items))
}

func (s *gset) LocalState() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.items))
	for k := range s.items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return []byte(strings.Join(keys, "\n"))
}

func (s *gset) MergeRemoteState(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	s.add(strings.Split(string(buf), "\n")...)
	return nil
}

// testLog collects a test's log lines; they are printed only if it fails
// (the last ones; all of them go to a file in $GOSSIP_TEST_LOGS if set).
// Lines written after the test ended (memberlist's last goroutines) are
// kept but never printed, so they cannot panic testing.T.
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// contains reports whether any line logged so far contains s.
func (l *testLog) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.buf.Bytes(), []byte(s))
}

func (l *testLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(strings.TrimRight(l.buf.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cluster starts and tracks test nodes.
type cluster struct {
	t      *testing.T
	log    *testLog
	base   Config // copied for every node
	nodes  []*node
	closed map[*Gossip]bool
}

// node is a running Gossip with its recorder and state.
type node struct {
	*Gossip
	id    string
	rec   *recorder
	state *gset
}

// clusterSeq numbers the clusters of this process, for their labels.
var clusterSeq atomic.Uint64

func newCluster(t *testing.T, edit func(*Config)) *cluster {
	c := &cluster{t: t, log: &testLog{}, closed: map[*Gossip]bool{}}
	c.base = DefaultLocalConfig()
	// NB: every cluster names its nodes n1, n2, n3 on 127.0.0.1, and tests
	// run in parallel, as do the test binaries of other packages. A node
	// keeps dialing a dead member's address (probes, gossip to the dead,
	// push/pull, the reconnect loop) after the kernel may have given that
	// port to a node of another cluster; without a label of its own the two
	// clusters merge, and one takes the other's n3 for its own.
	c.base.ClusterName = fmt.Sprintf("mnemo-test/%d/%d", os.Getpid(), clusterSeq.Add(1))
	c.base.JoinRetry = 100 * time.Millisecond
	c.base.Logger = zerolog.New(zerolog.ConsoleWriter{Out: c.log, NoColor: true, TimeFormat: "15:04:05.000"}).
		With().Timestamp().Logger().Level(zerolog.DebugLevel)
	if edit != nil {
		edit(&c.base)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			c.close(n)
		}
		if t.Failed() {
			t.Logf("last log lines:\n%s", c.log.tail(150))
			if dir := os.Getenv("GOSSIP_TEST_LOGS"); dir != "" {
				name := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+time.Now().Format("-150405.000")+".log")
				c.log.mu.Lock()
				err := os.WriteFile(name, c.log.buf.Bytes(), 0o644)
				c.log.mu.Unlock()
				t.Logf("full log in %s (%v)", name, err)
			}
		}
	})
	return c
}

// start starts node id on bind, joining join.
func (c *cluster) start(id, bind string, join ...string) *node {
	c.t.Helper()
	return c.startWith(id, bind, nil, join...)
}

// startWith is start with a last edit of the node's Config.
func (c *cluster) startWith(id, bind string, edit func(*Config, *node), join ...string) *node {
	c.t.Helper()
	n := &node{id: id, rec: &recorder{}, state: newGset()}
	cfg := c.base
	cfg.NodeID = id
	cfg.BindAddr = bind
	cfg.Join = join
	cfg.Meta = []byte("rpc-of-" + id)
	cfg.Events = n.rec
	cfg.State = n.state
	if edit != nil {
		edit(&cfg, n)
	}
	g, err := New(cfg)
	if err != nil {
		c.t.Fatalf("start %s on %s: %v", id, bind, err)
	}
	n.Gossip = g
	c.nodes = append(c.nodes, n)
	return n
}

// close closes n once, without leaving: to its peers it dies.
func (c *cluster) close(n *node) {
	if c.closed[n.Gossip] {
		return
	}
	c.closed[n.Gossip] = true
	if err := n.Close(); err != nil {
		c.t.Errorf("close %s: %v", n.id, err)
	}
}

// startThree starts n1 and n2, n3 joining it, and waits until all see all.
func (c *cluster) startThree() (n1, n2, n3 *node) {
	c.t.Helper()
	n1 = c.start("n1", "127.0.0.1:0")
	n2 = c.start("n2", "127.0.0.1:0", n1.LocalAddr())
	n3 = c.start("n3", "127.0.0.1:0", n1.LocalAddr())
	c.waitAlive(3, n1, n2, n3)
	return n1, n2, n3
}

// waitAlive waits until each of nodes sees want live members.
func (c *cluster) waitAlive(want int, nodes ...*node) {
	c.t.Helper()
	for _, n := range nodes {
		eventually(c.t, patience, n.id+" sees all members", func() (bool, string) {
			ids := n.AliveIDs()
			return len(ids) == want, fmt.Sprint(ids)
		})
	}
}

// waitEvent waits until each observer received an event of kind about id
// at or after since, and returns the last of them.
func waitEvent(t *testing.T, within time.Duration, kind eventKind, id string, since time.Time, observers ...*node) recorded {
	t.Helper()
	var last recorded
	for _, o := range observers {
		eventually(t, within, fmt.Sprintf("%s gets %s(%s)", o.id, kind, id), func() (bool, string) {
			e, ok := o.rec.find(kind, id, since)
			if ok && e.at.After(last.at) {
				last = e
			}
			return ok, o.rec.about(id)
		})
	}
	return last
}

// freeAddr returns a 127.0.0.1 address whose TCP and UDP ports were free a
// moment ago, for a node that must be named before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free TCP+UDP port on 127.0.0.1")
	return ""
}

// TestJoinInAnyOrder: nodes started before their seed, with a join list that
// names an unreachable address, find each other once the seed comes up.
func TestJoinInAnyOrder(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil)
	seed := freeAddr(t)
	const unreachable = "127.0.0.1:1" // nothing listens: refused at once

	n3 := c.start("n3", "127.0.0.1:0", unreachable, seed)
	n2 := c.start("n2", "127.0.0.1:0", seed)
	if got := n3.NumMembers(); got != 1 {
		t.Fatalf("n3 has %d members before the seed exists, want 1", got)
	}
	// The seed's own list names only itself: it is skipped, n1 waits to be
	// joined.
	n1 := c.start("n1", seed, seed)

	c.waitAlive(3, n1, n2, n3)
	for _, n := range []*node{n1, n2, n3} {
		for _, id := range []string{"n1", "n2", "n3"} {
			e := waitEvent(t, patience, evAlive, id, time.Time{}, n)
			if want := "rpc-of-" + id; string(e.m.Meta) != want || e.m.BootID == 0 {
				t.Errorf("%s: NodeAlive(%s) carries meta %q boot %x, want %q and a boot id", n.id, id, e.m.Meta, e.m.BootID, want)
			}
		}
	}
	m, _ := n2.Member("n1")
	if m.Addr != seed || m.BootID != n1.BootID() || m.State != Alive {
		t.Errorf("n2's view of n1 = %+v, want addr %s boot %x alive", m, seed, n1.BootID())
	}
}

// TestDeathAndRejoinSameAddress: a node killed without Leave is reported
// dead; the same NodeID restarted on the same address is reported rejoined.
// Reference: Dynamo 4.8 (failure detection), SWIM/Lifeguard as memberlist
// implements them.
func TestDeathAndRejoinSameAddress(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil)
	n1, n2, n3 := c.startThree()
	addr3, boot3 := n3.LocalAddr(), n3.BootID()

	killed := time.Now()
	c.close(n3)
	e := waitEvent(t, patience, evDead, "n3", killed, n1, n2)
	t.Logf("death of n3 detected by both peers %v after kill", e.at.Sub(killed).Round(time.Millisecond))
	if e.m.State != Dead || e.m.BootID != boot3 {
		t.Errorf("NodeDead(n3) = %+v, want state dead, boot %x", e.m, boot3)
	}
	if n1.Alive("n3") || n1.NumMembers() != 2 {
		t.Errorf("n1 after the death: Alive(n3)=%v NumMembers=%d", n1.Alive("n3"), n1.NumMembers())
	}
	if m, ok := n1.Member("n3"); !ok || m.State != Dead {
		t.Errorf("n1 forgot dead n3 or has it %v", m.State)
	}

	restarted := time.Now()
	n3b := c.start("n3", addr3, n1.LocalAddr())
	e = waitEvent(t, patience, evRejoined, "n3", restarted, n1, n2)
	t.Logf("rejoin of n3 seen by both peers %v after restart", e.at.Sub(restarted).Round(time.Millisecond))
	if e.m.BootID != n3b.BootID() || e.m.State != Alive || e.m.Addr != addr3 {
		t.Errorf("NodeRejoined(n3) = %+v, want boot %x alive at %s", e.m, n3b.BootID(), addr3)
	}
	c.waitAlive(3, n1, n2, n3b)
}

// TestRestartFasterThanDetection: a node restarted (same id and address)
// before the failure detector noticed is reported rejoined through its new
// boot id, without a NodeDead.
func TestRestartFasterThanDetection(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil)
	n1, n2, n3 := c.startThree()
	addr3 := n3.LocalAddr()

	restarted := time.Now()
	c.close(n3)
	n3b := c.start("n3", addr3, n1.LocalAddr())
	e := waitEvent(t, patience, evRejoined, "n3", restarted, n1, n2)
	t.Logf("restart of n3 seen by both peers %v after it", e.at.Sub(restarted).Round(time.Millisecond))
	if e.m.BootID != n3b.BootID() {
		t.Errorf("NodeRejoined(n3) boot %x, want the new %x", e.m.BootID, n3b.BootID())
	}
	for _, n := range []*node{n1, n2} {
		if d, ok := n.rec.find(evDead, "n3", restarted); ok && d.at.Before(e.at) {
			t.Errorf("%s saw n3 dead first (%s): the boot-id path was not exercised", n.id, n.rec.about("n3"))
		}
	}
}

// TestRecycledAddressDoesNotMergeClusters: a node given a port that another
// cluster still holds for one of its members does not merge with it. Cluster
// y closes its n3 and, before y notices, our n1 gets n3's old port; y keeps
// probing, gossiping and pushing/pulling to it. Without labels, our n1
// adopted y's n3 (at n1's own address) before our n3 joined and refused our
// n3 as a conflicting address; its probes of "n3" reached itself, so it
// reported n3 alive then dead, and its reconnect loop joined its own address
// rather than our n3. This is how a loaded parallel run (-race, with other
// packages' clusters) made TestSplitBrainHeals miss its deadline, and the
// likeliest way TestRestartFasterThanDetection did.
func TestRecycledAddressDoesNotMergeClusters(t *testing.T) {
	t.Parallel()
	y := newCluster(t, nil)
	_, _, y3 := y.startThree()
	recycled := y3.LocalAddr()
	y.close(y3) // y1 and y2 still hold n3 alive at recycled

	c := newCluster(t, nil)
	n1 := c.start("n1", recycled)
	eventually(t, patience, "n1 drops y's traffic to the recycled address", func() (bool, string) {
		if ids := n1.AliveIDs(); len(ids) != 1 {
			t.Fatalf("n1 merged with cluster y: it sees %v (n3: %s)", ids, n1.rec.about("n3"))
		}
		return c.log.contains("unacceptable label"), "no packet or stream from y seen yet"
	})
	n2 := c.start("n2", "127.0.0.1:0", n1.LocalAddr())
	n3 := c.start("n3", "127.0.0.1:0", n1.LocalAddr())
	c.waitAlive(3, n1, n2, n3)
	for _, n := range []*node{n2, n3} {
		if m, _ := n1.Member(n.id); m.BootID != n.BootID() || m.Addr != n.LocalAddr() {
			t.Errorf("n1 holds %s as boot %x at %s, want %x at %s", n.id, m.BootID, m.Addr, n.BootID(), n.LocalAddr())
		}
	}
}

// TestRejoinNewAddress: a node restarted under the same NodeID on another
// port is accepted once its old address has been dead DeadNodeReclaimTime.
func TestRejoinNewAddress(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil)
	n1, n2, n3 := c.startThree()

	killed := time.Now()
	c.close(n3)
	waitEvent(t, patience, evDead, "n3", killed, n1, n2)

	restarted := time.Now()
	n3b := c.start("n3", "127.0.0.1:0", n1.LocalAddr())
	e := waitEvent(t, patience, evRejoined, "n3", restarted, n1, n2)
	t.Logf("n3 on a new address accepted by both peers %v after restart", e.at.Sub(restarted).Round(time.Millisecond))
	if e.m.Addr != n3b.LocalAddr() {
		t.Errorf("NodeRejoined(n3) at %s, want the new %s", e.m.Addr, n3b.LocalAddr())
	}
}

// TestLeave: peers report a node that left as Left, quickly.
func TestLeave(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil)
	n1, n2, n3 := c.startThree()

	left := time.Now()
	if err := n3.Leave(2 * time.Second); err != nil {
		t.Fatalf("leave: %v", err)
	}
	e := waitEvent(t, patience, evDead, "n3", left, n1, n2)
	t.Logf("leave of n3 seen by both peers %v after Leave", e.at.Sub(left).Round(time.Millisecond))
	if e.m.State != Left {
		t.Errorf("NodeDead(n3).State = %v, want left", e.m.State)
	}
	if err := n3.UpdateMeta([]byte("x")); err != ErrLeft {
		t.Errorf("UpdateMeta after Leave = %v, want ErrLeft", err)
	}
	if err := n3.Leave(time.Second); err != nil {
		t.Errorf("second Leave: %v", err)
	}
}

// TestStateBroadcast: a change at one node reaches all through
// BroadcastState, with push/pull too slow to be the carrier; so does a
// 64 KiB state, too large for a gossip packet.
func TestStateBroadcast(t *testing.T) {
	t.Parallel()
	c := newCluster(t, func(cfg *Config) { cfg.PushPullInterval = time.Hour })
	n1, n2, n3 := c.startThree()

	start := time.Now()
	n1.state.add("small")
	n1.BroadcastState()
	for _, n := range []*node{n2, n3} {
		eventually(t, patience, n.id+" has n1's small state", func() (bool, string) { return n.state.hasAll("small") })
	}
	t.Logf("small state broadcast reached all in %v", time.Since(start).Round(time.Millisecond))

	var big []string
	for i := range 1024 { // 1024 items * 64 bytes = 64 KiB
		big = append(big, fmt.Sprintf("%063d", i))
	}
	if n := len(encodeStateMsg("n2", []byte(strings.Join(big, "\n")))); n < 64<<10 {
		t.Fatalf("big state is only %d bytes", n)
	}
	start = time.Now()
	n2.state.add(big...)
	n2.BroadcastState()
	for _, n := range []*node{n1, n3} {
		eventually(t, patience, n.id+" has n2's 64 KiB state", func() (bool, string) { return n.state.hasAll(big...) })
	}
	t.Logf("64 KiB state broadcast reached all in %v", time.Since(start).Round(time.Millisecond))
}

// TestStatePushPullOnly: without BroadcastState, push/pull alone carries a
// change, small or large, to every node.
func TestStatePushPullOnly(t *testing.T) {
	t.Parallel()
	c := newCluster(t, func(cfg *Config) { cfg.PushPullInterval = 500 * time.Millisecond })
	n1, n2, n3 := c.startThree()

	var big []string
	for i := range 1024 {
		big = append(big, fmt.Sprintf("pp-%060d", i))
	}
	start := time.Now()
	n3.state.add("quiet")
	n1.state.add(big...)
	for _, n := range []*node{n1, n2, n3} {
		eventually(t, patience, n.id+" converges by push/pull", func() (bool, string) {
			return n.state.hasAll(append([]string{"quiet"}, big...)...)
		})
	}
	t.Logf("push/pull alone converged in %v", time.Since(start).Round(time.Millisecond))
}

// TestUpdateMeta: a meta change reaches peers as NodeUpdated.
func TestUpdateMeta(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil)
	n1, n2, n3 := c.startThree()

	if err := n2.UpdateMeta(make([]byte, MaxMetaSize+1)); err == nil || !strings.Contains(err.Error(), "meta too large") {
		t.Fatalf("UpdateMeta(too large) = %v, want ErrMetaTooLarge", err)
	}
	start := time.Now()
	if err := n2.UpdateMeta([]byte("rpc=moved")); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	e := waitEvent(t, patience, evUpdated, "n2", start, n1, n3, n2)
	t.Logf("meta update seen by all %v after UpdateMeta", e.at.Sub(start).Round(time.Millisecond))
	for _, n := range []*node{n1, n3} {
		if m, _ := n.Member("n2"); string(m.Meta) != "rpc=moved" || m.BootID != n2.BootID() {
			t.Errorf("%s's view of n2: meta %q boot %x", n.id, m.Meta, m.BootID)
		}
		if _, ok := n.rec.find(evRejoined, "n2", start); ok {
			t.Errorf("%s took a meta update for a rejoin", n.id)
		}
	}
	// The largest meta fits memberlist's limit with the envelope.
	if err := n2.UpdateMeta(bytes.Repeat([]byte("m"), MaxMetaSize)); err != nil {
		t.Fatalf("UpdateMeta(MaxMetaSize): %v", err)
	}
	eventually(t, patience, "n1 sees the largest meta", func() (bool, string) {
		m, _ := n1.Member("n2")
		return len(m.Meta) == MaxMetaSize, fmt.Sprintf("%d bytes", len(m.Meta))
	})
}

// partition drops all traffic to and from isolated addresses: for a
// process that is paused (SIGSTOP) or cut off, as its peers see it.
type partition struct {
	mu  sync.Mutex
	cut map[string]bool
}

func (p *partition) set(addr string, isolated bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut == nil {
		p.cut = map[string]bool{}
	}
	p.cut[addr] = isolated
}

func (p *partition) blocked(from, to string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut[from] || p.cut[to]
}

func (p *partition) wrap(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	ip, port, err := inner.FinalAdvertiseAddr("", 0)
	if err != nil {
		panic(err)
	}
	return &partitionedTransport{NodeAwareTransport: inner, p: p, self: net.JoinHostPort(ip.String(), fmt.Sprint(port))}
}

// partitionedTransport is a transport whose packets and dials are dropped
// while its node or the peer is isolated.
type partitionedTransport struct {
	memberlist.NodeAwareTransport
	p    *partition
	self string
}

func (t *partitionedTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.p.blocked(t.self, addr) {
		return time.Now(), nil // lost, as UDP is
	}
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *partitionedTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.p.blocked(t.self, a.Addr) {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *partitionedTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.p.blocked(t.self, addr) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("partitioned")}
	}
	return t.NodeAwareTransport.DialTimeout(addr, timeout)
}

func (t *partitionedTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// TestPausedNodeRefutes: a node cut off long enough to be declared dead
// (as a SIGSTOP-paused process is) and then back refutes its death; its
// peers report NodeRejoined with the same boot id, and it reports them
// rejoined too.
func TestPausedNodeRefutes(t *testing.T) {
	t.Parallel()
	p := &partition{}
	c := newCluster(t, func(cfg *Config) { cfg.wrapTransport = p.wrap })
	n1, n2, n3 := c.startThree()

	paused := time.Now()
	p.set(n3.LocalAddr(), true)
	waitEvent(t, patience, evDead, "n3", paused, n1, n2)

	resumed := time.Now()
	p.set(n3.LocalAddr(), false)
	e := waitEvent(t, patience, evRejoined, "n3", resumed, n1, n2)
	t.Logf("paused n3 declared dead, then rejoined %v after resuming", e.at.Sub(resumed).Round(time.Millisecond))
	if e.m.BootID != n3.BootID() {
		t.Errorf("NodeRejoined(n3) boot %x, want the unchanged %x", e.m.BootID, n3.BootID())
	}
	// While cut off, n3 may have declared n1 and n2 dead too, and it does
	// not probe dead members: it learns they are alive only when a push/pull
	// from one of them makes that one refute, so this may take a few
	// PushPullIntervals.
	took := eventually(t, patience, "n3 sees its peers alive", func() (bool, string) {
		ids := n3.AliveIDs()
		return len(ids) == 3, fmt.Sprintf("%v; n1: %s n2: %s", ids, n3.rec.about("n1"), n3.rec.about("n2"))
	})
	t.Logf("n3 saw its peers alive %v after resuming (n1: %s, n2: %s)", took.Round(time.Millisecond), n3.rec.about("n1"), n3.rec.about("n2"))
	for _, id := range []string{"n1", "n2"} {
		if d, ok := n3.rec.find(evDead, id, paused); ok {
			waitEvent(t, patience, evRejoined, id, d.at, n3)
		}
	}
}

// TestSplitBrainHeals: once both sides of a partition hold each other dead
// and have stopped gossiping to the dead, only the reconnect loop brings
// them back together after the partition heals.
func TestSplitBrainHeals(t *testing.T) {
	t.Parallel()
	p := &partition{}
	c := newCluster(t, func(cfg *Config) {
		cfg.wrapTransport = p.wrap
		cfg.GossipToTheDeadTime = 100 * time.Millisecond
		cfg.PushPullInterval = time.Hour // push/pull does not reach the dead either
		cfg.ReconnectInterval = 500 * time.Millisecond
	})
	n1, n2, n3 := c.startThree()
	cut := time.Now()
	p.set(n3.LocalAddr(), true)
	waitEvent(t, patience, evDead, "n3", cut, n1, n2)
	eventually(t, patience, "n3 holding both peers dead", func() (bool, string) {
		ids := n3.AliveIDs()
		return len(ids) == 1, fmt.Sprint(ids)
	})
	p.set(n3.LocalAddr(), false)
	took := eventually(t, patience, "every node seeing all three alive", func() (bool, string) {
		for i, g := range []*node{n1, n2, n3} {
			if ids := g.AliveIDs(); len(ids) != 3 {
				return false, fmt.Sprintf("n%d sees %v", i+1, ids)
			}
		}
		return true, ""
	})
	t.Logf("split brain healed %v after the partition did", took.Round(time.Millisecond))
}

// TestCloseIsIdempotent: Close twice is fine, and the API answers after it.
func TestCloseIsIdempotent(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil)
	n1 := c.start("n1", "127.0.0.1:0")
	if err := n1.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := n1.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := n1.UpdateMeta(nil); err != ErrClosed {
		t.Errorf("UpdateMeta after Close = %v, want ErrClosed", err)
	}
	if err := n1.Leave(time.Second); err != ErrClosed {
		t.Errorf("Leave after Close = %v, want ErrClosed", err)
	}
	n1.BroadcastState() // must not block or panic
	if ids := n1.AliveIDs(); len(ids) != 1 || ids[0] != "n1" {
		t.Errorf("AliveIDs after Close = %v", ids)
	}
}

// gatedEvents passes events to a recorder only once release is closed: a
// handler that is stuck.
type gatedEvents struct {
	rec     *recorder
	release chan struct{}
}

func (e gatedEvents) NodeAlive(m Member)    { <-e.release; e.rec.NodeAlive(m) }
func (e gatedEvents) NodeDead(m Member)     { <-e.release; e.rec.NodeDead(m) }
func (e gatedEvents) NodeRejoined(m Member) { <-e.release; e.rec.NodeRejoined(m) }
func (e gatedEvents) NodeUpdated(m Member)  { <-e.release; e.rec.NodeUpdated(m) }

// TestStuckHandlerDoesNotStallDetection: while a node's Events handler is
// blocked, that node still joins, detects a death and answers Members;
// once unblocked, the handler gets every event, in order.
func TestStuckHandlerDoesNotStallDetection(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // runs before the cluster's: Close waits for the handler
	n1 := c.startWith("n1", "127.0.0.1:0", func(cfg *Config, n *node) {
		cfg.Events = gatedEvents{rec: n.rec, release: release}
	})
	n2 := c.start("n2", "127.0.0.1:0", n1.LocalAddr())
	n3 := c.start("n3", "127.0.0.1:0", n1.LocalAddr())
	c.waitAlive(3, n1, n2, n3)

	c.close(n3)
	took := eventually(t, patience, "n1 marks n3 dead with its handler stuck", func() (bool, string) {
		m, _ := n1.Member("n3")
		return m.State == Dead, m.State.String()
	})
	t.Logf("death detected %v after kill with the handler stuck", took.Round(time.Millisecond))
	if got := n1.rec.about("n3"); got != "[]" {
		t.Fatalf("stuck handler received %s", got)
	}

	unblock()
	// The handler gets everything that happened while it was stuck. (The
	// exact sequence is TestEventQueueOrder's; here members may flap on a
	// loaded machine, adding dead/rejoined pairs.)
	eventually(t, patience, "n1's handler catches up", func() (bool, string) {
		_, ok := n1.rec.find(evDead, "n3", time.Time{})
		return ok, fmt.Sprintf("n1: %s n2: %s n3: %s", n1.rec.about("n1"), n1.rec.about("n2"), n1.rec.about("n3"))
	})
	for _, id := range []string{"n1", "n2", "n3"} {
		if got := n1.rec.about(id); !strings.HasPrefix(got, "[alive(") {
			t.Errorf("events about %s do not start with NodeAlive: %s", id, got)
		}
	}
}
