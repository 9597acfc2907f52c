package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/antientropy"
	"github.com/mnemo-kv/mnemo/gossip"
	"github.com/mnemo-kv/mnemo/hintedhandoff"
	"github.com/mnemo-kv/mnemo/internal/admin"
	"github.com/mnemo-kv/mnemo/internal/adminauth"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/security"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/resp"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/transfer"
	"github.com/mnemo-kv/mnemo/version"
)

// Version is the build's version, set with -ldflags at build time.
var Version = "dev"

// ErrClosed is returned by requests served while the node shuts down.
var ErrClosed = errors.New("node: closed")

// view is an immutable snapshot of the ring as this node knows it. A new one
// is published whenever the ring state changes; requests load it once.
type view struct {
	state ring.State
	// ring places data on the members that own it now: active and leaving
	// ones. Reads and write quorums use it.
	ring *ring.Ring
	// future is the ring once joins and leaves complete: active and
	// joining members. Joining members receive writes (not counted toward
	// W) and pull the partitions they will own; leaving ones hand theirs off.
	future  *ring.Ring
	members map[ring.NodeID]ring.Member
}

// hintSink is where a fallback records that it holds key's object for the
// dead home replica forID, to hand it off when that node is back.
type hintSink interface {
	Add(forID ring.NodeID, key []byte, obj *version.Object) error
}

// handler serves one request kind.
type handler func(ctx context.Context, payload []byte) (any, error)

// Node is one running mnemo node. New starts it; Close stops it.
type Node struct {
	cfg   Config
	log   zerolog.Logger
	self  ring.NodeID
	store *store.Store
	// gsp is set once gossip starts; RPC serves before that, so it is read
	// atomically (nil until then).
	gsp     atomic.Pointer[gossip.Gossip]
	pool    *wire.Pool
	rpc     *wire.Server
	rpcLn   net.Listener
	httpSrv *http.Server
	httpLn  net.Listener
	metrics *metrics
	started time.Time

	// tls is the node's TLS material; nil with security disabled.
	tls  *security.Reloader
	tlsm tlsMetrics

	// stateMu guards state (the ring-state CRDT) and selfEntry (what this
	// node wants its own entry to say).
	stateMu   sync.Mutex
	state     ring.State
	selfEntry ring.Member

	// publishMu serializes publishView, so that a view built from an older
	// clone of state can never replace one built from a newer clone.
	publishMu sync.Mutex
	// lastForeground is when a client read or write was last served (unix
	// ns); see markForeground.
	lastForeground atomic.Int64
	view           atomic.Pointer[view]
	// remoteState is set once a peer's ring state has been merged.
	remoteState atomic.Bool
	// adoptStatus is set when this node starts on an empty directory: its
	// first view of the cluster's ring decides whether it joins anew or
	// keeps a place the ring already gives it. Guarded by stateMu.
	adoptStatus bool

	// handlers is filled before serving starts and read-only after.
	handlers map[wire.Kind]handler

	// hints keeps what this node holds as a fallback for a dead home
	// replica (hinted handoff); nil: hints are off.
	hints hintSink

	// ringHooks run after a new ring view is published (on the publishing
	// goroutine: they must only signal). Set before serving.
	ringHooks []func()

	// gossipKeys are the key file's keys, from the first step of New
	// until gossip starts and takes them.
	gossipKeys [][]byte

	// statsSources add subsystems' figures to NodeInfo. Set before serving.
	statsSources []statsSource

	// rejoinHooks run (on the gossip event goroutine) when a peer is seen
	// alive again after a death or restart. Set before serving starts.
	rejoinHooks []func(id ring.NodeID)

	// rejoins records when peers were last seen joining or rejoining, for
	// the reads' fan-out (readfanout.go).
	rejoins rejoins

	// testServe, set by tests only, runs before every request's handler;
	// an error it returns is the request's answer. nil in production (one
	// atomic load per request).
	testServe atomic.Pointer[func(kind wire.Kind, payload []byte) error]

	// bg is cancelled by Close; background work (replication after the
	// quorum is met, read repair) runs under it and is tracked by wg.
	bg       context.Context
	cancelBg context.CancelFunc
	wg       sync.WaitGroup

	// secrets are the RESP users and admin tokens, read at start-up.
	secrets secrets

	// puts batches the RESP port's concurrent single SETs (combiner).
	puts *combiner[*proto.PutRequest, *proto.PutReply]

	// resp is the Redis-protocol server; nil when off.
	resp   *resp.Server
	respLn net.Listener

	// handoff is hinted handoff; nil when off.
	handoff *hintedhandoff.Handoff

	// ae is Merkle anti-entropy; nil when off. trees are its Merkle
	// trees, made when the store opens (they observe every write).
	ae    *antientropy.AntiEntropy
	trees *antientropy.Trees

	// transfer runs ownership transfer.
	transfer *transfer.Transfer

	closeOnce sync.Once
	closeErr  error
	// done receives why the node must stop: ErrLeft after a decommission,
	// or a fatal error (a ring with another partition count); see Done.
	done chan error
}

// zeroIsOff maps a node setting where 0 means off to the store's spelling
// of off (negative): the store reads 0 as "use the default".
func zeroIsOff[T ~int64](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// New opens the node's store, binds its ports, joins the cluster and starts
// serving. The caller must Close it.
//
// The steps run in this order for reasons that matter: the store opens
// before anything can ask for data; ports are bound before the node's ring
// entry is made (the entry carries their addresses); the subsystems and
// every hook are in place before any server serves (their handlers and
// hooks are read by the servers' goroutines); the RPC port serves before
// gossip joins, since peers learn its address from gossip and may call at
// once.
func New(cfg Config, log zerolog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:      cfg,
		log:      log.With().Str("node", cfg.ID).Logger(),
		self:     ring.NodeID(cfg.ID),
		started:  time.Now(),
		handlers: map[wire.Kind]handler{},
		done:     make(chan error, 1),
	}
	n.bg, n.cancelBg = context.WithCancel(context.Background())
	n.puts = newCombiner(func(reqs []*proto.PutRequest) ([]*proto.PutReply, []error) { return n.PutMany(n.bg, reqs) },
		func(k int) { n.metrics.combinedBatch.WithLabelValues("put").Observe(float64(k)) })
	n.metrics = newMetrics(n)
	// On any failure below, undo what was started. NB: n is not a named
	// result: goroutines started below use it, and `return nil, err` would
	// set a named result to nil under them.
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()
	steps := []struct {
		name string
		run  func() error
	}{
		// TLS files first: a node that cannot be secure touches no data.
		{"load the TLS files", n.startTLS},
		{"read the users and tokens", n.loadSecrets},
		{"read the gossip keys", n.readGossipKeys},
		{"open the store", n.openStore},
		{"bind the ports", n.bindPorts},
		{"make the ring entry", n.makeRingEntry},
		{"start the subsystems", n.startSubsystems},
		{"serve RPC and HTTP", n.startServers},
		{"join gossip", func() error { return n.joinGossip(log) }},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			return nil, err
		}
	}
	n.transfer.Start()
	n.wg.Add(1)
	go n.housekeeping()

	n.log.Info().Str("rpc", n.RPCAddr()).Str("http", n.HTTPAddr()).Str("gossip", n.GossipAddr()).
		Strs("join", cfg.Join).Int("partitions", cfg.Partitions).
		Int("n", cfg.N).Int("r", cfg.R).Int("w", cfg.W).Str("conflicts", cfg.Conflicts.String()).
		Msg("node started")
	ok = true
	return n, nil
}

// openStore opens (or creates) the Pebble store, checks that its data is
// not older than the tombstone grace, and records that the node is alive.
// With anti-entropy on, the Merkle trees watch every change from the first
// write on; startSubsystems starts the exchange.
func (n *Node) openStore() error {
	cfg := n.cfg
	sopts := store.Options{
		Dir:             cfg.Data,
		NodeID:          cfg.ID,
		Partitions:      cfg.Partitions,
		Segments:        cfg.Segments,
		Sync:            cfg.Sync,
		SyncInterval:    cfg.SyncInterval,
		MaxKeySize:      cfg.MaxKeySize,
		MaxValueSize:    cfg.MaxValueSize,
		CacheSize:       cfg.CacheSize,
		ObjectCacheSize: zeroIsOff(cfg.ObjectCacheSize),
		SyncMinGap:      zeroIsOff(cfg.SyncMinGap),
		Logger:          n.log,
		// Kept with or without anti-entropy, so turning it on later finds
		// the store's digests current.
		Digest:     antientropy.LeafHash,
		DigestName: antientropy.LeafHashName,
	}
	if cfg.AntiEntropy {
		n.trees = antientropy.NewTrees(cfg.Partitions, cfg.Segments)
		sopts.Observer = n.trees
	}
	st, err := store.Open(sopts)
	if err != nil {
		return err
	}
	if n.store, err = n.checkStale(st, sopts); err != nil {
		return err
	}
	n.metrics.reg.MustRegister(n.store.Collector())
	if err := n.markAlive(); err != nil {
		return err
	}
	n.log.Info().Str("data", cfg.Data).Str("epoch", n.store.Epoch()).Bool("fresh", n.store.Fresh()).
		Str("sync", cfg.Sync.String()).Msg("store open")
	return nil
}

// bindPorts binds the RPC and admin HTTP listeners (serving starts in
// startServers) and makes the peer connection pool.
func (n *Node) bindPorts() error {
	var err error
	if n.rpcLn, err = net.Listen("tcp", n.cfg.RPC); err != nil {
		return fmt.Errorf("node: rpc listen %s: %w", n.cfg.RPC, err)
	}
	n.rpcLn = n.SecureListener(n.rpcLn, "rpc", security.RequireClientCert)
	if n.cfg.HTTP != "" {
		if n.httpLn, err = net.Listen("tcp", n.cfg.HTTP); err != nil {
			return fmt.Errorf("node: http listen %s: %w", n.cfg.HTTP, err)
		}
		n.httpLn = n.SecureListener(n.httpLn, "http", security.OptionalClientCert)
	}
	// One connection per peer: frames of concurrent requests share its
	// flushes (3.4 frames per syscall instead of 1.8 with two, and a
	// fifth less CPU per put in BenchmarkClusterPutGet).
	pcfg := wire.ClientConfig{Logger: n.log, ConnsPerAddr: 1, TLS: n.dialTLS}
	if n.cfg.Security != security.Disabled {
		pcfg.LocalIP = dialFrom(n.rpcLn.Addr())
	}
	n.pool = wire.NewPool(pcfg)
	return nil
}

// makeRingEntry makes this node's own ring entry (its lifecycle status as
// the store remembers it, its addresses, its security mode) and publishes
// the first view, which has only this node. Ownership transfer is made
// first: it keeps the persisted status.
func (n *Node) makeRingEntry() error {
	if err := n.newTransfer(); err != nil {
		return err
	}
	status, err := n.initialStatus()
	if err != nil {
		return err
	}
	n.registerHandlers()
	n.selfEntry = ring.Member{
		ID:       n.self,
		Zone:     n.cfg.Zone,
		Status:   status,
		RPCAddr:  n.rpcLn.Addr().String(),
		Security: uint8(n.cfg.Security),
	}
	if n.httpLn != nil {
		n.selfEntry.HTTPAddr = n.httpLn.Addr().String()
	}
	n.state = ring.NewState(n.cfg.Partitions)
	n.state.Update(n.selfEntry)
	n.publishView()
	return nil
}

// startSubsystems starts anti-entropy, hinted handoff and the RESP port
// (each if on), and sets every hook and stats source: all before any
// server serves, since the servers' handlers and gossip's goroutines read
// them.
func (n *Node) startSubsystems() error {
	if n.trees != nil {
		if err := n.startAntiEntropy(n.trees); err != nil {
			return err
		}
	}
	if n.cfg.Hints {
		if err := n.startHandoff(); err != nil {
			return err
		}
	}
	if n.cfg.RESP != "" {
		if err := n.startRESP(); err != nil {
			return err
		}
		n.selfEntry.RESPAddr = n.RESPAddr()
		n.state.Update(n.selfEntry) // gossip has not started: no lock contention
		n.publishView()
	}
	n.ringHooks = append(n.ringHooks, n.transfer.Signal)
	n.rejoinHooks = append(n.rejoinHooks, n.transfer.NodeRejoined)
	n.statsSources = append(n.statsSources, n.transferStats)
	if wake := n.startEncryptionWatch(); wake != nil {
		n.ringHooks = append(n.ringHooks, wake)
		n.rejoinHooks = append(n.rejoinHooks, func(ring.NodeID) { wake() })
	}
	n.metrics.reg.MustRegister(newKeyringCollector(n))
	return nil
}

// startServers serves the RPC port and, if bound, the admin HTTP port.
func (n *Node) startServers() error {
	rcfg := wire.ServerConfig{MaxFrame: wire.DefaultMaxFrame, Logger: n.log, Inline: n.inline}
	if n.cfg.Security != security.Disabled {
		rcfg.Authorize = n.authorize
	}
	n.rpc = wire.NewServer(rcfg, n.serve)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.rpc.Serve(n.rpcLn); err != nil {
			n.log.Error().Err(err).Msg("rpc server stopped")
		}
	}()
	if n.httpLn != nil {
		auth := n.secrets.admin
		// A verified client or node certificate opens the admin routes
		// as a token does.
		auth.PeerIdentity = func(c net.Conn) bool { _, ok := verifiedIdentity(c); return ok }
		h := admin.NewHandler(admin.Config{Node: (*adminView)(n), Metrics: n.metrics.reg, Logger: n.log, Auth: auth})
		n.registerAdminMetrics(h.Refused)
		// ConnContext lets the auth check read a client certificate from a
		// wrapped TLS connection.
		n.httpSrv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ConnContext: adminauth.ConnContext}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.log.Error().Err(err).Msg("http server stopped")
			}
		}()
	}
	return nil
}

// joinGossip starts memberlist, joins the seeds, and adds the gossip
// address to this node's ring entry. log is New's logger, without the node
// field that gossip adds itself.
func (n *Node) joinGossip(log zerolog.Logger) error {
	cfg := n.cfg
	gcfg := gossip.DefaultConfig()
	if cfg.GossipProfile == "local" || (cfg.GossipProfile == "" && allLoopback(cfg)) {
		gcfg = gossip.DefaultLocalConfig()
	}
	gcfg.NodeID = cfg.ID
	gcfg.ClusterName = cfg.ClusterName
	gcfg.BindAddr = cfg.Gossip
	gcfg.Join = cfg.Join
	gcfg.State = (*stateDelegate)(n)
	gcfg.Events = (*events)(n)
	gcfg.Logger = log
	gcfg.Encryption = cfg.Security
	if cfg.Security != security.Disabled {
		gcfg.Keys = n.gossipKeys
	}
	n.gossipKeys = nil // gossip holds them from now on, not the node
	g, err := gossip.New(gcfg)
	if err != nil {
		return err
	}
	n.gsp.Store(g)
	n.stateMu.Lock()
	n.selfEntry.GossipAddr = g.LocalAddr()
	n.state.Update(n.selfEntry)
	n.stateMu.Unlock()
	n.publishView()
	g.BroadcastState()
	return nil
}

// allLoopback reports whether every address the node uses is on loopback,
// where the fast local failure-detector timings are safe.
func allLoopback(cfg Config) bool {
	addrs := append([]string{cfg.Gossip, cfg.RPC}, cfg.Join...)
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return false
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}

// ID is the node's id.
func (n *Node) ID() ring.NodeID { return n.self }

// RPCAddr is the bound RPC address.
func (n *Node) RPCAddr() string { return n.rpcLn.Addr().String() }

// HTTPAddr is the bound admin address, or "" when off.
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// GossipAddr is the bound gossip address.
func (n *Node) GossipAddr() string { return n.gsp.Load().LocalAddr() }

// Store is the node's store (tests and subsystems).
func (n *Node) Store() *store.Store { return n.store }

// Done returns a channel that receives why the node stopped serving on its
// own: ErrLeft once a decommission (mnemo leave) has completed, or an error
// that keeps it from running correctly (a cluster with another partition
// count). The caller should then Close it.
func (n *Node) Done() <-chan error { return n.done }

// Ring returns the current ring snapshot.
func (n *Node) Ring() *ring.Ring { return n.view.Load().ring }

// RingState returns a copy of the current ring state.
func (n *Node) RingState() ring.State { return n.view.Load().state.Clone() }

// alive reports whether a ring member is alive as far as gossip knows; the
// node itself always is.
func (n *Node) alive(id ring.NodeID) bool {
	if id == n.self {
		return true
	}
	g := n.gsp.Load()
	return g != nil && g.Alive(string(id))
}

// publishView rebuilds the ring snapshot from the state. Callers must not
// hold stateMu. Concurrent calls (gossip merging a peer's state while the
// node updates its own entry) are serialized from the clone to the swap:
// otherwise the slower one could publish its older clone last, leaving a
// restarted node routing with a ring of itself alone until the next change.
func (n *Node) publishView() {
	if changed := n.swapView(); changed {
		for _, h := range n.ringHooks {
			h()
		}
	}
}

// swapView publishes a view of the current state and reports whether its
// digest differs from the previous view's.
func (n *Node) swapView() bool {
	n.publishMu.Lock()
	defer n.publishMu.Unlock()
	n.stateMu.Lock()
	st := n.state.Clone()
	n.stateMu.Unlock()
	owners := st.WithStatus(ring.Active, ring.Leaving)
	r, err := ring.New(st.Partitions, ring.NodesOf(owners))
	if err != nil {
		n.log.Error().Err(err).Msg("ring state does not make a ring; keeping the old one")
		return false
	}
	future, err := ring.New(st.Partitions, ring.NodesOf(st.WithStatus(ring.Active, ring.Joining)))
	if err != nil {
		n.log.Error().Err(err).Msg("ring state does not make a future ring; keeping the old one")
		return false
	}
	v := &view{state: st, ring: r, future: future, members: make(map[ring.NodeID]ring.Member, len(st.Members))}
	for id, m := range st.Members {
		v.members[id] = m
	}
	old := n.view.Swap(v)
	if old == nil || old.state.Digest() == st.Digest() {
		return false
	}
	n.log.Info().Int("owners", len(owners)).Uint64("digest", st.Digest()).Msg("ring changed")
	return true
}

// stateDelegate lets gossip carry the ring state.
type stateDelegate Node

func (d *stateDelegate) LocalState() []byte {
	n := (*Node)(d)
	n.stateMu.Lock()
	defer n.stateMu.Unlock()
	b, err := n.state.Encode()
	if err != nil {
		n.log.Error().Err(err).Msg("encode ring state")
		return nil
	}
	return b
}

func (d *stateDelegate) MergeRemoteState(buf []byte) error {
	n := (*Node)(d)
	remote, err := ring.DecodeState(buf)
	if err != nil {
		return err
	}
	n.stateMu.Lock()
	changed, err := n.state.Merge(remote)
	if errors.Is(err, ring.ErrPartitionMismatch) {
		n.stateMu.Unlock()
		err = fmt.Errorf("node: the cluster has %d partitions, this node was started with %d: start it with --partitions %d (and an empty data directory) or join another cluster: %w",
			remote.Partitions, n.cfg.Partitions, remote.Partitions, err)
		select {
		case n.done <- err:
		default:
		}
		return err
	}
	// If a peer holds an older or different entry for us (we restarted and
	// our version counter went back), re-assert ours above it, as memberlist
	// refutes with a higher incarnation.
	reassert := false
	adopted := ring.Status(0)
	cur, known := n.state.Member(n.self)
	if n.adoptStatus && known && !n.remoteState.Load() && (cur.Status == ring.Active || cur.Status == ring.Leaving) {
		// A node on an empty directory that the cluster already lists as
		// a member (a replaced disk): keep its place in the ring; anti-
		// entropy refills it. A new or removed node joins instead.
		n.selfEntry.Status = cur.Status
		adopted = cur.Status
	}
	if known && !sameEntry(cur, n.selfEntry) {
		n.selfEntry.Version = cur.Version
		n.state.Update(n.selfEntry)
		reassert = true
	}
	firstRemote := err == nil && len(remote.Members) > 0 && !n.remoteState.Load()
	n.stateMu.Unlock()
	if changed || reassert || firstRemote {
		n.publishView()
	}
	if adopted != 0 {
		// Before the ownership loop may act (below): it must not start
		// pulling partitions anti-entropy will refill.
		n.log.Info().Str("status", adopted.String()).Msg("empty data directory, but the cluster lists this node: keeping its place; anti-entropy refills it")
		if err := n.transfer.Adopted(adopted); err != nil {
			n.log.Error().Err(err).Msg("persist adopted status")
		}
	}
	if firstRemote {
		// Only now that the view holds the cluster's members may the
		// ownership loop act on it (see joined).
		n.remoteState.Store(true)
		n.transfer.Signal()
	}
	if g := n.gsp.Load(); reassert && g != nil {
		g.BroadcastState()
	}
	return err
}

// sameEntry compares two member entries, ignoring their versions.
func sameEntry(a, b ring.Member) bool {
	a.Version, b.Version = 0, 0
	return a == b
}

// events receives gossip's liveness changes.
type events Node

func (e *events) NodeAlive(m gossip.Member) {
	n := (*Node)(e)
	if m.ID == string(n.self) {
		return
	}
	n.log.Info().Str("peer", m.ID).Str("addr", m.Addr).Msg("peer alive")
	// First, before hints or anti-entropy's work start: reads ask every
	// replica of the peer's keys for a while (readfanout.go).
	n.noteFirstSight(ring.NodeID(m.ID))
	// After this node restarts, peers it holds hints for (or missed writes
	// from) appear as alive, not rejoined: catch up with them too.
	for _, h := range n.rejoinHooks {
		h(ring.NodeID(m.ID))
	}
}

func (e *events) NodeDead(m gossip.Member) {
	n := (*Node)(e)
	n.log.Warn().Str("peer", m.ID).Str("state", m.State.String()).Msg("peer dead")
	// A peer that vanished without closing its sockets would otherwise be
	// noticed only through callers' timeouts.
	if mem, ok := n.view.Load().members[ring.NodeID(m.ID)]; ok && mem.RPCAddr != "" {
		n.pool.CloseAddr(mem.RPCAddr)
	}
}

func (e *events) NodeRejoined(m gossip.Member) {
	n := (*Node)(e)
	n.log.Info().Str("peer", m.ID).Str("addr", m.Addr).Msg("peer rejoined")
	// First, before hints or anti-entropy's work start: reads ask every
	// replica of the peer's keys for a while (readfanout.go).
	n.noteRejoin(ring.NodeID(m.ID))
	for _, h := range n.rejoinHooks {
		h(ring.NodeID(m.ID))
	}
}

func (e *events) NodeUpdated(m gossip.Member) {}

// Close stops serving, leaves gossip without announcing (a stop is a
// transient failure, not a departure), waits for all background work and
// closes the store. Idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		if g := n.gsp.Load(); g != nil {
			errs = append(errs, g.Close())
		}
		if n.rpc != nil {
			errs = append(errs, n.rpc.Close())
		} else if n.rpcLn != nil {
			n.rpcLn.Close()
		}
		if n.resp != nil {
			errs = append(errs, n.resp.Close())
		}
		if n.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			errs = append(errs, n.httpSrv.Shutdown(ctx))
			cancel()
		} else if n.httpLn != nil {
			n.httpLn.Close()
		}
		n.cancelBg()
		if n.transfer != nil {
			errs = append(errs, n.transfer.Close())
		}
		if n.handoff != nil {
			errs = append(errs, n.handoff.Close())
		}
		if n.ae != nil {
			errs = append(errs, n.ae.Close())
		}
		if n.pool != nil {
			errs = append(errs, n.pool.Close())
		}
		n.wg.Wait()
		if n.tls != nil {
			errs = append(errs, n.tls.Close())
		}
		if n.store != nil {
			errs = append(errs, n.store.Close())
		}
		n.closeErr = errors.Join(errs...)
		n.log.Info().Msg("node stopped")
	})
	return n.closeErr
}

// inline reports whether the RPC reader may serve a kind itself (see
// wire.ServerConfig.Inline): a replica's read, and its write unless the
// write waits for an fsync, which would hold every later request on the
// connection behind it. Replica writes and reads are most of a replica's
// requests, and the hand-off to a handler goroutine and back cost more
// than the memtable operation itself.
func (n *Node) inline(kind wire.Kind) bool {
	switch kind {
	case proto.KindReplicaGet, proto.KindReplicaGetBatch:
		return true
	case proto.KindReplicaPut, proto.KindReplicaPutBatch:
		return n.cfg.Sync != store.SyncAlways
	}
	return false
}

// serve dispatches one RPC to its handler and encodes the reply.
func (n *Node) serve(ctx context.Context, kind wire.Kind, payload []byte) (wire.Kind, []byte, error) {
	h, ok := n.handlers[kind]
	if !ok {
		return 0, nil, wire.Errorf(wire.CodeUnknownKind, "unknown request kind %d", kind)
	}
	if hook := n.testServe.Load(); hook != nil {
		if err := (*hook)(kind, payload); err != nil {
			return 0, nil, toWireError(err)
		}
	}
	reply, err := h(ctx, payload)
	if err != nil {
		return 0, nil, toWireError(err)
	}
	if b, ok := reply.([]byte); ok {
		return kind, b, nil
	}
	b, err := wire.Marshal(reply)
	if err != nil {
		return 0, nil, wire.Errorf(wire.CodeInternal, "encode reply: %v", err)
	}
	return kind, b, nil
}

// decode unmarshals a request body, mapping failure to a bad-request error.
// The replica handlers call their message's DecodeMsgpack and malformed
// instead: through wire.Unmarshal's interface the message would move to
// the heap.
func decode(payload []byte, v any) error {
	if err := wire.Unmarshal(payload, v); err != nil {
		return malformed(err)
	}
	return nil
}

// malformed is the bad-request error for a request body that did not decode.
func malformed(err error) error {
	return wire.Errorf(wire.CodeBadRequest, "malformed request: %v", err)
}

func (n *Node) registerHandlers() {
	n.handlers[proto.KindPing] = func(ctx context.Context, _ []byte) (any, error) { return []byte{}, nil }
	n.handlers[proto.KindGet] = n.handleGet
	n.handlers[proto.KindPut] = n.handlePut
	n.handlers[proto.KindCoordPut] = n.handlePut
	n.handlers[proto.KindReplicaPut] = n.handleReplicaPut
	n.handlers[proto.KindReplicaGet] = n.handleReplicaGet
	n.handlers[proto.KindReplicaPutBatch] = n.handleReplicaPutBatch
	n.handlers[proto.KindReplicaGetBatch] = n.handleReplicaGetBatch
	n.handlers[proto.KindStatus] = n.handleStatus
	n.handlers[proto.KindNodeInfo] = func(ctx context.Context, _ []byte) (any, error) { return n.nodeInfo(), nil }
	n.handlers[proto.KindLeave] = n.handleLeave
	n.handlers[proto.KindRemove] = n.handleRemove
	n.handlers[proto.KindKeyring] = n.handleKeyring
	n.handlers[proto.KindKeyringLocal] = n.handleKeyringLocal
}

// initialStatus decides how this node enters the ring: as it was before a
// restart; joining when it starts on an empty directory and has members to
// join (it pulls its partitions first); active when it founds a cluster.
// A node that was removed while away comes back as a plain join.
func (n *Node) initialStatus() (ring.Status, error) {
	if s, ok := n.transfer.PersistedStatus(); ok {
		switch s {
		case ring.Removed:
			n.log.Warn().Msg("this node was removed from the ring: rejoining as a new member; its old data is merged, not trusted")
			return ring.Joining, n.transfer.PersistStatus(ring.Joining)
		case ring.Active, ring.Leaving, ring.Joining:
			return s, nil
		}
	}
	status := ring.Active
	if n.store.Fresh() && len(n.otherSeeds()) > 0 {
		status = ring.Joining
		n.adoptStatus = true
	}
	return status, n.transfer.PersistStatus(status)
}

// otherSeeds is the join list without this node's own gossip address.
func (n *Node) otherSeeds() []string {
	var out []string
	for _, j := range n.cfg.Join {
		if j != n.cfg.Gossip {
			out = append(out, j)
		}
	}
	return out
}

// joined reports whether this node has reached the cluster it was told to
// join (or founds one).
func (n *Node) joined() bool {
	if len(n.otherSeeds()) == 0 {
		return true
	}
	// NB: gossip reports a peer alive a moment before its ring state is
	// merged (memberlist calls NotifyJoin first); decide nothing from a
	// ring that does not hold the cluster's members yet.
	g := n.gsp.Load()
	return g != nil && g.NumMembers() > 1 && n.remoteState.Load()
}
