package node

// Wiring of the repair subsystems (anti-entropy, hinted handoff) to the
// node: each gets a small Cluster view of the node, its RPC kinds, the
// liveness hooks and a place in NodeInfo. Each package has a Kind type of
// its own, so that its API does not need internal/wire; its values are the
// wire numbers, converted as they are.

import (
	"context"
	"fmt"
	"strconv"

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
	n.statsSources = append(n.statsSources, func(stats map[string]float64, detail map[string]any) {
		s := ae.Stats()
		stats["ae_exchanges"] = float64(s.Exchanges)
		stats["ae_repairs"] = float64(s.Repairs)
		stats["ae_failures"] = float64(s.Failures)
		stats["ae_keys_sent"] = float64(s.KeysSent)
		stats["ae_keys_received"] = float64(s.KeysReceived)
		stats["ae_keys_changed"] = float64(s.KeysChanged)
		stats["ae_bytes_sent"] = float64(s.BytesSent)
		stats["ae_bytes_received"] = float64(s.BytesReceived)
		stats["ae_trees_built"] = float64(s.TreesBuilt)
		if s.TreesVerified {
			stats["ae_trees_verified"] = 1
			stats["ae_trees_wrong"] = float64(s.TreesWrong)
		}
		roots := map[string]string{}
		for p, r := range ae.Roots() {
			roots[strconv.Itoa(int(p))] = strconv.FormatUint(r, 16)
		}
		detail["ae_roots"] = roots
		// Per partition, when it was last seen in sync with each replica.
		inSync := map[string]map[string]string{}
		for _, pr := range s.Pairs {
			k := strconv.Itoa(int(pr.Partition))
			if inSync[k] == nil {
				inSync[k] = map[string]string{}
			}
			if !pr.LastInSync.IsZero() {
				inSync[k][string(pr.Peer)] = pr.LastInSync.UTC().Format("2006-01-02T15:04:05.000Z")
			} else {
				inSync[k][string(pr.Peer)] = "never"
			}
		}
		detail["ae_last_in_sync"] = inSync
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
	n.statsSources = append(n.statsSources, func(stats map[string]float64, detail map[string]any) {
		s := hh.Stats()
		stats["hints_stored"] = float64(s.Stored)
		stats["hints_replayed"] = float64(s.Replayed)
		stats["hints_expired"] = float64(s.Expired)
		stats["hints_batches"] = float64(s.Batches)
		stats["hints_bytes_sent"] = float64(s.BytesSent)
		stats["hints_copies_dropped"] = float64(s.CopiesDropped)
		stats["hints_failures"] = float64(s.Failures)
		pending := map[string]int64{}
		for id, c := range s.Pending {
			if c > 0 {
				pending[string(id)] = c
			}
		}
		if len(pending) > 0 {
			detail["hints_pending"] = pending
		}
		if !s.Last.Start.IsZero() {
			detail["hints_last_replay"] = s.Last
		}
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
