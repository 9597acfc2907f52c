package node

// Wiring of the repair subsystems (anti-entropy now; hinted handoff) to
// the node: each gets a small Cluster view of the node, its RPC kinds, the
// liveness hooks and a place in NodeInfo.

import (
	"context"
	"fmt"
	"time"

	"github.com/mnemo-kv/mnemo/antientropy"
	"github.com/mnemo-kv/mnemo/hintedhandoff"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
)

// cluster is the node as its subsystems see it.
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

func (c *cluster) Call(ctx context.Context, to ring.NodeID, kind wire.Kind, payload []byte) ([]byte, error) {
	m, ok := c.view.Load().members[to]
	if !ok || m.RPCAddr == "" {
		return nil, fmt.Errorf("node: no address for %s", to)
	}
	_, resp, err := c.pool.Call(ctx, m.RPCAddr, kind, payload)
	return resp, err
}

// kindHandler adapts a subsystem's Handle to a node handler.
func kindHandler(kind wire.Kind, h func(ctx context.Context, kind wire.Kind, payload []byte) ([]byte, error)) handler {
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
		Cluster:    (*cluster)(n),
		Interval:   n.cfg.AEInterval,
		Rate:       n.cfg.AERate,
		CPUShare:   aeCPUShare(n.cfg.AECPU),
		Busy:       n.busy,
		Logger:     n.log, // the package adds its component
		Registerer: n.metrics.reg,
	})
	if err != nil {
		return err
	}
	n.ae = ae
	for _, k := range ae.Kinds() {
		n.handlers[k] = kindHandler(k, ae.Handle)
	}
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
		Cluster:    (*cluster)(n),
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
	for _, k := range hh.Kinds() {
		n.handlers[k] = kindHandler(k, hh.Handle)
	}
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
