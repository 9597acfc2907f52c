package node

// Wiring of the repair subsystems (anti-entropy, hinted handoff) to the
// node: each gets a small Cluster view of the node, its RPC kinds, the
// liveness hooks and a place in NodeInfo. Each package has a Kind type of
// its own, so that its API does not need internal/wire; its values are the
// wire numbers, converted as they are.

import (
	"context"
	"fmt"
	"time"

	"github.com/mnemo-kv/mnemo/antientropy"
	"github.com/mnemo-kv/mnemo/hintedhandoff"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/transfer"
)

// cluster is the node as its subsystems see it; aeCluster and hhCluster
// add Call with each package's kind type.
type cluster Node

func (c *cluster) Self() ring.NodeID         { return c.self }
func (c *cluster) Alive(id ring.NodeID) bool { return (*Node)(c).alive(id) }
func (c *cluster) Replicas(p ring.Partition) []ring.NodeID {
	return c.view.Load().ring.Home(p, c.cfg.N)
}

func (c *cluster) IsHome(key []byte, id ring.NodeID) bool {
	v := c.view.Load()
	return v.ring.IsHome(v.ring.PartitionForKey(key), c.cfg.N, id)
}

// call sends one request to a ring member's RPC address.
func (c *cluster) call(ctx context.Context, to ring.NodeID, kind wire.Kind, payload []byte) ([]byte, error) {
	m, ok := c.view.Load().members[to]
	if !ok || m.RPCAddr == "" {
		return nil, fmt.Errorf("node: no address for %s", to)
	}
	_, resp, err := c.pool.Call(ctx, m.RPCAddr, kind, payload)
	return resp, err
}

// aeCluster is the node as anti-entropy sees it.
type aeCluster struct{ *cluster }

func (c aeCluster) Call(ctx context.Context, to ring.NodeID, kind antientropy.Kind, payload []byte) ([]byte, error) {
	return c.call(ctx, to, wire.Kind(kind), payload)
}

// hhCluster is the node as hinted handoff sees it.
type hhCluster struct{ *cluster }

func (c hhCluster) Call(ctx context.Context, to ring.NodeID, kind hintedhandoff.Kind, payload []byte) ([]byte, error) {
	return c.call(ctx, to, wire.Kind(kind), payload)
}

// subsystemKind is a subsystem's own kind type, whose values are wire kinds.
type subsystemKind interface {
	antientropy.Kind | hintedhandoff.Kind | transfer.Kind
}

// handleKinds routes each of a subsystem's kinds to its Handle.
func handleKinds[K subsystemKind](n *Node, kinds []K, h func(ctx context.Context, kind K, payload []byte) ([]byte, error)) {
	for _, k := range kinds {
		n.handlers[wire.Kind(k)] = kindHandler(k, h)
	}
}

// kindHandler adapts a subsystem's Handle to a node handler.
func kindHandler[K subsystemKind](kind K, h func(ctx context.Context, kind K, payload []byte) ([]byte, error)) handler {
	return func(ctx context.Context, payload []byte) (any, error) {
		b, err := h(ctx, kind, payload)
		if err != nil {
			return nil, err
		}
		if b == nil {
			b = []byte{}
		}
		return b, nil
	}
}

// startAntiEntropy wires anti-entropy: its trees already observe the store.
func (n *Node) startAntiEntropy(trees *antientropy.Trees) error {
	ae, err := antientropy.New(antientropy.Config{
		Store:      n.store,
		Trees:      trees,
		Cluster:    aeCluster{(*cluster)(n)},
		Interval:   n.cfg.AEInterval,
		Rate:       n.cfg.AERate,
		CPUShare:   aeCPUShare(n.cfg.AECPU),
		Busy:       n.busy,
		Caller:     callerNode,
		Logger:     n.log, // the package adds its component
		Registerer: n.metrics.reg,
	})
	if err != nil {
		return err
	}
	n.ae = ae
	handleKinds(n, ae.Kinds(), ae.Handle)
	n.rejoinHooks = append(n.rejoinHooks, ae.NodeRejoined)
	n.statsSources = append(n.statsSources, func(info *proto.NodeInfo) {
		info.AntiEntropy = aeStatus(ae)
	})
	return nil
}

// startHandoff wires hinted handoff: fallbacks keep hints for dead home
// replicas and replay them when gossip sees those nodes again.
func (n *Node) startHandoff() error {
	hh, err := hintedhandoff.New(hintedhandoff.Config{
		Store:      n.store,
		Cluster:    hhCluster{(*cluster)(n)},
		Window:     n.cfg.HintWindow,
		Rate:       n.cfg.HintRate,
		Logger:     n.log, // the package adds its component
		Registerer: n.metrics.reg,
	})
	if err != nil {
		return err
	}
	n.handoff = hh
	n.hints = hh
	handleKinds(n, hh.Kinds(), hh.Handle)
	n.rejoinHooks = append(n.rejoinHooks, hh.NodeRejoined)
	n.statsSources = append(n.statsSources, func(info *proto.NodeInfo) {
		info.Handoff = handoffStatus(hh.Stats())
	})
	return nil
}

// aeCPUShare maps --ae-cpu to antientropy's CPUShare, where 0 means the
// default and a negative share unbounded.
func aeCPUShare(v float64) float64 {
	if v == 0 {
		return -1
	}
	return v
}

// adminView is the node as the admin HTTP port reads it.
type adminView Node

func (a *adminView) Status(ctx context.Context) *proto.Status { return (*Node)(a).Status(ctx) }
func (a *adminView) Ring() *ring.Ring                         { return (*Node)(a).Ring() }
func (a *adminView) Healthy() bool                            { return a.bg.Err() == nil }

// aeStatus is anti-entropy's report for NodeInfo.
func aeStatus(ae *antientropy.AntiEntropy) proto.AntiEntropyStatus {
	s := ae.Stats()
	st := proto.AntiEntropyStatus{
		On:        true,
		Exchanges: s.Exchanges, Repairs: s.Repairs, Failures: s.Failures,
		KeysSent: s.KeysSent, KeysReceived: s.KeysReceived, KeysChanged: s.KeysChanged,
		BytesSent: s.BytesSent, BytesReceived: s.BytesReceived,
		TreesBuilt: s.TreesBuilt, Partitions: s.Partitions,
		TreesVerified: s.TreesVerified, TreesWrong: s.TreesWrong,
		RejoinPending: s.RejoinPending,
		Roots:         map[uint32]uint64{},
	}
	for p, r := range ae.Roots() {
		st.Roots[uint32(p)] = r
	}
	for _, pr := range s.Pairs {
		st.Pairs = append(st.Pairs, proto.AntiEntropyPair{Partition: uint32(pr.Partition), Peer: string(pr.Peer), LastInSync: pr.LastInSync})
	}
	return st
}

// handoffStatus is hinted handoff's report for NodeInfo.
func handoffStatus(s hintedhandoff.Stats) proto.HandoffStatus {
	st := proto.HandoffStatus{
		On:     true,
		Stored: s.Stored, Replayed: s.Replayed, Expired: s.Expired,
		Batches: s.Batches, BytesSent: s.BytesSent,
		Superseded: s.Superseded, Rejected: s.Rejected, Failures: s.Failures,
		CopiesDropped: s.CopiesDropped, Replaying: s.Replaying,
	}
	for id, c := range s.Pending {
		if c > 0 {
			if st.Pending == nil {
				st.Pending = map[string]int64{}
			}
			st.Pending[string(id)] = c
		}
	}
	if l := s.Last; !l.Start.IsZero() {
		st.LastReplay = &proto.HintReplay{
			Target: string(l.Target), Start: l.Start, DurationMs: float64(l.Duration) / float64(time.Millisecond),
			Replayed: l.Replayed, Expired: l.Expired, Err: l.Err,
		}
	}
	return st
}
