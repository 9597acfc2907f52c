package gossip

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	mrand "math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/internal/security"
)

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("gossip: closed")

// ErrLeft is returned by UpdateMeta after Leave: memberlist ignores updates
// of a node that left.
var ErrLeft = errors.New("gossip: node has left the cluster")

const (
	// maxPacketState is the largest state message, in bytes, sent by UDP
	// gossip; larger ones go over TCP to each member. memberlist packs
	// broadcasts into UDPBufferSize (1400) bytes, less 5 of framing, and its
	// own alive/suspect/dead messages go first; 1 KiB leaves room for them
	// so a state broadcast rarely waits a gossip round for space.
	maxPacketState = 1024

	// inboxSize bounds the state messages waiting for the merger goroutine.
	// When it is full new ones are dropped: the state is a CRDT, a later
	// broadcast or push/pull carries the same information.
	inboxSize = 64

	// stateBroadcastName names gossip's single state broadcast in the
	// TransmitLimitedQueue: a new one replaces the one still queued.
	stateBroadcastName = "mnemo/gossip/state"
)

// Gossip is one node's membership in a cluster: its failure detector, its
// liveness events and the carriage of its replicated state. All methods are
// safe for concurrent use.
type Gossip struct {
	cfg       Config
	log       zerolog.Logger
	bootID    uint64
	ml        *memberlist.Memberlist
	localAddr string

	// table is this node's view of every member; written only from
	// memberlist's event callbacks.
	table *memberTable
	// events carries table changes to the dispatcher goroutine.
	events *eventQueue
	// gate guards memberlist callbacks that run user code against Close.
	gate *callbackGate
	// queue holds the pending state broadcast for UDP gossip.
	queue *memberlist.TransmitLimitedQueue
	// keys is the gossip keyring (empty of keys when Encryption is
	// disabled, or transitional and not yet enabled).
	keys *keyring
	// follow, on a transitional node, watches incoming packets for the
	// first one encrypted with its keys; nil otherwise.
	follow *followTransport

	// inbox carries state messages from memberlist's NotifyMsg to the
	// merger goroutine, so a slow MergeRemoteState never holds up
	// memberlist's packet handler.
	inbox chan inboundState
	// broadcastReq asks the broadcaster goroutine to send the state;
	// capacity 1, so requests made while it is busy coalesce into one.
	broadcastReq chan struct{}
	// dropped counts state messages dropped because inbox was full.
	dropped atomic.Uint64

	// meta guards what NodeMeta gossips.
	meta struct {
		sync.Mutex
		user    []byte // user meta, Config.Meta or the last UpdateMeta
		leaving bool   // set by Leave
	}

	// life serializes Leave and UpdateMeta against Close: memberlist panics
	// on Leave after Shutdown.
	life struct {
		sync.Mutex
		closed bool
		left   bool
	}

	// stop is closed by Close; every goroutine below wg watches it.
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// inboundState is a state message waiting to be merged.
type inboundState struct {
	from  string
	state []byte
}

// New validates cfg, starts memberlist on cfg.BindAddr and, if cfg.Join is
// not empty, starts joining the cluster in the background (retried every
// cfg.JoinRetry until a peer answers). It returns once the node listens;
// poll NumMembers to wait for the join.
func New(cfg Config) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Join = append([]string(nil), cfg.Join...)
	g := &Gossip{
		cfg:          cfg,
		log:          cfg.Logger.With().Str("component", "gossip").Str("node", cfg.NodeID).Logger(),
		bootID:       newBootID(),
		table:        newMemberTable(),
		events:       newEventQueue(),
		gate:         newCallbackGate(),
		inbox:        make(chan inboundState, inboxSize),
		broadcastReq: make(chan struct{}, 1),
		stop:         make(chan struct{}),
	}
	g.meta.user = append([]byte(nil), cfg.Meta...)
	keys, err := newKeyring(cfg.Encryption, cfg.Keys)
	if err != nil {
		return nil, err
	}
	g.keys = keys
	g.cfg.Keys = nil // held by g.keys only

	mc, err := g.memberlistConfig()
	if err != nil {
		return nil, err
	}
	g.queue = &memberlist.TransmitLimitedQueue{
		// NB: the queue calls NumNodes under its own lock, possibly while
		// memberlist holds its node lock: read our atomic, not memberlist.
		NumNodes:       func() int { return int(g.table.alive.Load()) },
		RetransmitMult: mc.RetransmitMult,
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		// memberlist shuts the transport down only on some of its errors;
		// shutting down twice is harmless.
		_ = mc.Transport.Shutdown()
		return nil, fmt.Errorf("gossip: start memberlist: %w", err)
	}
	g.ml = ml
	g.localAddr = ml.LocalNode().Address()
	ks := g.keys.status()
	g.log.Info().Str("addr", g.localAddr).Uint64("boot_id", g.bootID).
		Str("encryption", ks.Mode.String()).Bool("encrypting", ks.Encrypting).Str("primary_key", ks.Primary).
		Int("keys", len(ks.Keys)).Msg("gossip started")

	if g.follow != nil {
		g.wg.Add(1)
		go g.runFollow(g.follow)
	}
	if cfg.Events != nil {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.events.dispatch(cfg.Events, g.stop)
		}()
	}
	if cfg.State != nil {
		g.wg.Add(2)
		go g.runMerger()
		go g.runBroadcaster()
	}
	if seeds := g.seeds(); len(seeds) > 0 {
		g.wg.Add(1)
		go g.runJoin(seeds)
	}
	g.wg.Add(1)
	go g.runReconnect()
	return g, nil
}

// runReconnect heals split brains. After a partition, each side declares
// the other dead and SWIM stops probing the dead, so without help the two
// sides never meet again (Serf has the same loop for the same reason).
// Every ReconnectInterval it joins (a push/pull: both sides learn the other
// is alive, and each refutes its own death) a few members it holds dead,
// dead for less than ReconnectTimeout, and seeds no live member answers on.
func (g *Gossip) runReconnect() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.ReconnectInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		live := map[string]bool{}
		var dead []string
		for _, m := range g.table.all() {
			switch {
			case m.ID == g.cfg.NodeID:
			case m.State == Alive:
				live[m.Addr] = true
			case m.State == Dead && time.Since(m.Since) < g.cfg.ReconnectTimeout:
				dead = append(dead, m.Addr)
			}
		}
		for _, s := range g.seeds() {
			addr := s
			if i := strings.IndexByte(s, '/'); i >= 0 {
				addr = s[i+1:]
			}
			if !live[addr] && !slices.Contains(dead, addr) {
				dead = append(dead, addr)
			}
		}
		if len(dead) == 0 {
			continue
		}
		mrand.Shuffle(len(dead), func(i, j int) { dead[i], dead[j] = dead[j], dead[i] })
		try := dead[:min(3, len(dead))]
		// NB: Join blocks up to TCPTimeout per unreachable address.
		n, err := g.ml.Join(try)
		g.peerEncrypts(err)
		if n > 0 {
			g.log.Debug().Strs("addrs", try).Int("reached", n).Msg("reconnect: reached members held dead")
		} else {
			g.log.Debug().Err(err).Strs("addrs", try).Msg("reconnect: none reached")
		}
	}
}

// memberlistConfig builds memberlist's configuration and its transport.
func (g *Gossip) memberlistConfig() (*memberlist.Config, error) {
	cfg := g.cfg
	mlLog := newMemberlistLogger(cfg.Logger, cfg.NodeID)
	bindIP, bindPort, _ := splitIPPort(cfg.BindAddr, false) // validated

	nt, err := newTransport(bindIP, bindPort, mlLog)
	if err != nil {
		return nil, err
	}
	bound := nt.GetAutoBindPort()

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeID
	mc.BindAddr = bindIP
	mc.BindPort = bound // also the default port of Join addresses without one
	mc.AdvertisePort = bound
	if cfg.AdvertiseAddr != "" {
		ip, port, _ := splitIPPort(cfg.AdvertiseAddr, true) // validated
		mc.AdvertiseAddr = ip
		if port != 0 {
			mc.AdvertisePort = port
		}
	}
	mc.Label = cfg.ClusterName
	if g.keys.ml != nil {
		// NB: memberlist reads these two flags unsynchronized on every
		// packet, so they are fixed here; what changes at runtime is the
		// keyring's contents (EncryptionEnabled is "the keyring holds a
		// key"), under the keyring's own lock.
		mc.Keyring = g.keys.ml
		mc.GossipVerifyIncoming = cfg.Encryption == security.Required
		mc.GossipVerifyOutgoing = true
	}
	var tr memberlist.NodeAwareTransport = nt
	if cfg.Encryption == security.Transitional {
		g.follow = &followTransport{NodeAwareTransport: nt, out: make(chan *memberlist.Packet), stop: make(chan struct{})}
		tr = g.follow
	}
	if cfg.wrapTransport != nil {
		tr = cfg.wrapTransport(tr)
	}
	mc.Transport = tr
	mc.Logger = mlLog
	mc.Delegate = (*hooks)(g)
	mc.Events = (*hooks)(g)

	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.SuspicionMult = cfg.SuspicionMult
	mc.SuspicionMaxTimeoutMult = cfg.SuspicionMaxTimeoutMult
	mc.GossipInterval = cfg.GossipInterval
	mc.PushPullInterval = cfg.PushPullInterval
	mc.TCPTimeout = cfg.TCPTimeout
	mc.GossipToTheDeadTime = cfg.GossipToTheDeadTime
	mc.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	return mc, nil
}

// newTransport listens on ip:port for memberlist. gossip builds the
// transport itself, rather than letting memberlist do it, so that tests can
// wrap it. As memberlist does, it retries a dynamic port: the kernel picks a
// free TCP port and the UDP one of the same number may be taken.
func newTransport(ip string, port int, logger *log.Logger) (*memberlist.NetTransport, error) {
	attempts := 1
	if port == 0 {
		attempts = 10
	}
	var err error
	for range attempts {
		var nt *memberlist.NetTransport
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{ip},
			BindPort:  port,
			Logger:    logger,
		})
		if err == nil {
			return nt, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("gossip: listen on %s: %w", joinIPPort(ip, port), err)
}

func joinIPPort(ip string, port int) string {
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + strconv.Itoa(port)
	}
	return ip + ":" + strconv.Itoa(port)
}

// newBootID returns a random, non-zero boot id (0 means unknown).
func newBootID() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
		if id := binary.BigEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// seeds returns cfg.Join less this node's own addresses, so that every node
// can be given the same list: a join that reaches only itself joins nothing.
func (g *Gossip) seeds() []string {
	self := map[string]bool{g.localAddr: true, g.cfg.BindAddr: true}
	if g.cfg.AdvertiseAddr != "" {
		self[g.cfg.AdvertiseAddr] = true
	}
	var out []string
	for _, s := range g.cfg.Join {
		addr := s
		if i := strings.IndexByte(s, '/'); i >= 0 { // "name/host:port"
			addr = s[i+1:]
		}
		if !self[addr] {
			out = append(out, s)
		}
	}
	return out
}

// runJoin joins the cluster through seeds, retrying every JoinRetry until a
// peer answers or some peer joins this node first.
func (g *Gossip) runJoin(seeds []string) {
	defer g.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for attempt := 1; ; attempt++ {
		select {
		case <-g.stop:
			return
		case <-timer.C:
		}
		if g.ml.NumMembers() > 1 {
			g.log.Info().Int("members", g.ml.NumMembers()).Msg("joined: a peer contacted this node")
			return
		}
		// NB: Join blocks up to TCPTimeout per unreachable seed, and so may
		// Close, which waits for this goroutine.
		n, err := g.ml.Join(seeds)
		if n > 0 && g.ml.NumMembers() > 1 {
			g.log.Info().Int("reached", n).Int("members", g.ml.NumMembers()).Int("attempt", attempt).Msg("joined cluster")
			return
		}
		if g.peerEncrypts(err) {
			timer.Reset(0)
			continue
		}
		ev := g.log.Debug()
		if attempt == 1 {
			ev = g.log.Warn()
		}
		ev.Err(err).Strs("seeds", seeds).Dur("retry", g.cfg.JoinRetry).Int("attempt", attempt).
			Msg("join failed; retrying in the background")
		timer.Reset(g.cfg.JoinRetry)
	}
}

// runMerger merges state messages taken from inbox.
func (g *Gossip) runMerger() {
	defer g.wg.Done()
	for {
		select {
		case <-g.stop:
			return
		case in := <-g.inbox:
			if err := g.cfg.State.MergeRemoteState(in.state); err != nil {
				g.log.Warn().Err(err).Str("from", in.from).Int("bytes", len(in.state)).Msg("merging broadcast state failed")
			}
		}
	}
}

// runBroadcaster sends the local state each time BroadcastState asks.
func (g *Gossip) runBroadcaster() {
	defer g.wg.Done()
	for {
		select {
		case <-g.stop:
			return
		case <-g.broadcastReq:
		}
		msg := encodeStateMsg(g.cfg.NodeID, g.cfg.State.LocalState())
		if len(msg) <= maxPacketState {
			g.queue.QueueBroadcast(stateBroadcast(msg))
			continue
		}
		// Too large for a gossip packet: send it over TCP to each live
		// member. The same state would reach them by push/pull, but only
		// one random member per PushPullInterval.
		// NB: the targets come from this package's member table, not
		// ml.Members(): those are pointers into memberlist's state, whose
		// Addr and Port it rewrites (under its lock) while SendReliable
		// would read them (a data race the race detector caught under
		// load).
		for _, m := range g.table.all() {
			if m.ID == g.cfg.NodeID || m.State != Alive {
				continue
			}
			select {
			case <-g.stop:
				return
			default:
			}
			host, port, err := net.SplitHostPort(m.Addr)
			ip := net.ParseIP(host)
			pn, perr := strconv.Atoi(port)
			if err != nil || ip == nil || perr != nil {
				continue
			}
			to := &memberlist.Node{Name: m.ID, Addr: ip, Port: uint16(pn)}
			if err := g.ml.SendReliable(to, msg); err != nil {
				g.log.Debug().Err(err).Str("to", m.ID).Int("bytes", len(msg)).Msg("sending state over TCP failed; push/pull will carry it")
			}
		}
	}
}

// LocalAddr returns the gossip address peers reach this node at, host:port
// (with the port picked by the kernel when BindAddr had port 0).
func (g *Gossip) LocalAddr() string { return g.localAddr }

// BootID returns this process's boot id: random, non-zero, new at every
// start.
func (g *Gossip) BootID() uint64 { return g.bootID }

// Members returns every member this node has seen in this process's life,
// including itself and the dead and left ones, sorted by ID.
func (g *Gossip) Members() []Member { return g.table.all() }

// Member returns member id as this node last saw it.
func (g *Gossip) Member(id string) (Member, bool) { return g.table.get(id) }

// Alive reports whether member id is alive.
func (g *Gossip) Alive(id string) bool {
	m, ok := g.table.get(id)
	return ok && m.State == Alive
}

// AliveIDs returns the ids of the live members, this node included, sorted.
func (g *Gossip) AliveIDs() []string { return g.table.aliveIDs() }

// NumMembers returns the number of live members, this node included.
func (g *Gossip) NumMembers() int { return int(g.table.alive.Load()) }

// UpdateMeta replaces this node's user meta and gossips it; peers report
// NodeUpdated. It waits up to five gossip rounds for the update to go out,
// then returns anyway: the update stays queued and push/pull carries it
// too. It returns an error wrapping ErrMetaTooLarge if meta exceeds
// MaxMetaSize, ErrLeft after Leave and ErrClosed after Close.
func (g *Gossip) UpdateMeta(meta []byte) error {
	if err := checkMetaSize(len(meta)); err != nil {
		return err
	}
	g.life.Lock()
	defer g.life.Unlock()
	switch {
	case g.life.closed:
		return ErrClosed
	case g.life.left:
		return ErrLeft
	}
	g.meta.Lock()
	g.meta.user = append([]byte(nil), meta...)
	g.meta.Unlock()
	// NB: memberlist's UpdateNode signals completion with a non-blocking
	// send on an unbuffered channel, so it can miss the signal and run to
	// its timeout; a timeout here is not a failure.
	if err := g.ml.UpdateNode(5 * g.cfg.GossipInterval); err != nil {
		g.log.Debug().Err(err).Msg("meta update queued, not yet gossiped")
	}
	return nil
}

// BroadcastState sends the current LocalState to all nodes promptly. It
// never blocks and never calls the StateDelegate on the caller's goroutine
// (the caller may hold its state's lock): a gossip goroutine reads
// LocalState soon after. Calls made while a send is in progress coalesce
// into one more send of the then-current state.
//
// A state of up to 1 KiB rides UDP gossip (a new broadcast replaces one
// still queued); a larger one is sent over memberlist's reliable TCP to each
// live member. Push/pull repairs anything lost either way.
func (g *Gossip) BroadcastState() {
	if g.cfg.State == nil {
		return
	}
	select {
	case g.broadcastReq <- struct{}{}:
	default:
	}
}

// Leave tells the cluster this node is leaving and waits up to timeout for
// the news to be gossiped; peers then report it as Left. The node keeps
// running (answering probes, merging state) until Close. Leave may be called
// more than once. timeout must be positive.
func (g *Gossip) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		return fmt.Errorf("gossip: leave timeout must be positive, got %v", timeout)
	}
	deadline := time.Now().Add(timeout)
	g.life.Lock()
	defer g.life.Unlock()
	if g.life.closed {
		return ErrClosed
	}
	if !g.life.left {
		g.life.left = true
		// First gossip the leaving flag, so that peers can tell this Left
		// from a Dead. Best effort: if the flag does not get out before
		// memberlist's leave message, peers report Dead.
		g.meta.Lock()
		g.meta.leaving = true
		g.meta.Unlock()
		_ = g.ml.UpdateNode(min(timeout/2, 5*g.cfg.GossipInterval))
	}
	// NB: memberlist's Leave waits for ever on a timeout of 0.
	remaining := max(time.Until(deadline), time.Millisecond)
	if err := g.ml.Leave(remaining); err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	return nil
}

// Close stops the node without leaving (peers detect it as dead), stops
// every goroutine gossip started and waits for them, including a running
// Events handler; events still queued are dropped. After Close returns the
// StateDelegate and Events are not called again. Close may be called more
// than once; it must not be called from an Events handler.
//
// Close may take up to TCPTimeout when a join attempt or a large state send
// is dialing an unreachable peer.
func (g *Gossip) Close() error {
	g.closeOnce.Do(func() {
		g.life.Lock()
		g.life.closed = true
		g.life.Unlock()
		g.gate.close()
		close(g.stop)
		if err := g.ml.Shutdown(); err != nil {
			g.closeErr = fmt.Errorf("gossip: shutdown memberlist: %w", err)
		}
		if g.follow != nil {
			close(g.follow.stop)
		}
		g.wg.Wait()
		g.log.Info().Msg("gossip closed")
	})
	return g.closeErr
}

// stateBroadcast is the state message queued for UDP gossip.
type stateBroadcast []byte

var _ memberlist.NamedBroadcast = stateBroadcast(nil)

// Invalidates reports whether b replaces other: any older state broadcast.
func (b stateBroadcast) Invalidates(other memberlist.Broadcast) bool {
	nb, ok := other.(memberlist.NamedBroadcast)
	return ok && nb.Name() == stateBroadcastName
}

func (b stateBroadcast) Name() string    { return stateBroadcastName }
func (b stateBroadcast) Message() []byte { return b }
func (b stateBroadcast) Finished()       {}

// hooks is Gossip's face to memberlist: its Delegate and EventDelegate.
// A separate type keeps these methods out of Gossip's API. memberlist calls
// them on its own goroutines, the event ones under its node lock: they must
// not block and must not call back into memberlist.
type hooks Gossip

var (
	_ memberlist.Delegate      = (*hooks)(nil)
	_ memberlist.EventDelegate = (*hooks)(nil)
)

// NodeMeta returns this node's meta envelope.
func (h *hooks) NodeMeta(limit int) []byte {
	g := (*Gossip)(h)
	g.meta.Lock()
	env := envelope{bootID: g.bootID, leaving: g.meta.leaving, meta: g.meta.user}
	g.meta.Unlock()
	b := env.encode()
	if len(b) > limit { // cannot happen: Validate and UpdateMeta check the size
		g.log.Error().Int("bytes", len(b)).Int("limit", limit).Msg("node meta too large; gossiping the boot id only")
		env.meta = nil
		b = env.encode()
	}
	return b
}

// NotifyMsg receives a state broadcast and hands it to the merger.
func (h *hooks) NotifyMsg(b []byte) {
	g := (*Gossip)(h)
	if g.cfg.State == nil {
		return
	}
	sender, state, err := decodeStateMsg(b)
	if err != nil {
		g.log.Warn().Err(err).Int("bytes", len(b)).Msg("ignoring bad user message")
		return
	}
	if sender == g.cfg.NodeID {
		return
	}
	// NB: memberlist may reuse b after we return.
	in := inboundState{from: sender, state: bytes.Clone(state)}
	select {
	case <-g.stop:
	case g.inbox <- in:
	default:
		n := g.dropped.Add(1)
		g.log.Warn().Str("from", sender).Uint64("dropped_total", n).Msg("state merge queue full; dropped a broadcast (push/pull will repair)")
	}
}

// GetBroadcasts hands memberlist the queued state broadcast, if it fits.
func (h *hooks) GetBroadcasts(overhead, limit int) [][]byte {
	return h.queue.GetBroadcasts(overhead, limit)
}

// LocalState returns this node's state for a push/pull.
func (h *hooks) LocalState(join bool) []byte {
	g := (*Gossip)(h)
	if g.cfg.State == nil || !g.gate.enter() {
		return nil
	}
	defer g.gate.exit()
	return encodePushPull(g.cfg.State.LocalState())
}

// MergeRemoteState merges a peer's state received by push/pull. It runs on
// memberlist's push/pull goroutine (one per exchange), not on the packet
// handler, so it merges in place.
func (h *hooks) MergeRemoteState(buf []byte, join bool) {
	g := (*Gossip)(h)
	if g.cfg.State == nil || len(buf) == 0 || !g.gate.enter() {
		return
	}
	defer g.gate.exit()
	state, err := decodePushPull(buf)
	if err != nil {
		g.log.Warn().Err(err).Int("bytes", len(buf)).Msg("ignoring bad push/pull state")
		return
	}
	if err := g.cfg.State.MergeRemoteState(state); err != nil {
		g.log.Warn().Err(err).Bool("join", join).Int("bytes", len(state)).Msg("merging push/pull state failed")
	}
}

func (h *hooks) NotifyJoin(n *memberlist.Node)   { (*Gossip)(h).observe(obsJoin, n) }
func (h *hooks) NotifyLeave(n *memberlist.Node)  { (*Gossip)(h).observe(obsLeave, n) }
func (h *hooks) NotifyUpdate(n *memberlist.Node) { (*Gossip)(h).observe(obsUpdate, n) }

// observe records what memberlist reported about n and queues the
// resulting event. It runs under memberlist's node lock: only bookkeeping.
func (g *Gossip) observe(o observation, n *memberlist.Node) {
	var env envelope
	envOK := false
	if o != obsLeave {
		var err error
		env, err = decodeEnvelope(n.Meta)
		envOK = err == nil
		if !envOK {
			// A peer's bad meta is ignored, its liveness is not.
			g.log.Warn().Err(err).Str("member", n.Name).Str("addr", n.Address()).Msg("ignoring bad node meta")
		}
	}
	ev, ok := g.table.observe(o, n.Name, n.Address(), env, envOK, time.Now())
	if !ok {
		return
	}
	le := g.log.Info()
	if ev.kind == evUpdated {
		le = g.log.Debug()
	}
	le.Str("event", ev.kind.String()).Str("member", ev.member.ID).Str("addr", ev.member.Addr).
		Stringer("state", ev.member.State).Uint64("boot_id", ev.member.BootID).Msg("member changed")
	if g.cfg.Events != nil {
		g.events.push(ev)
	}
}
