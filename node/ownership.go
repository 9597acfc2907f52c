package node

// Wiring of ownership transfer (package transfer) to the node, and the
// ring changes operators ask for: leave and remove.

import (
	"context"
	"errors"
	"time"

	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/transfer"
)

// ErrLeft is sent on Done when the node has left the ring (mnemo leave).
var ErrLeft = errors.New("node: left the ring")

// newTransfer makes ownership transfer (not started: see transfer.Start)
// and loads its state. Its hooks are set by New, with the others.
func (n *Node) newTransfer() error {
	t, err := transfer.New(transfer.Config{
		Store:           n.store,
		Cluster:         (*transferCluster)(n),
		N:               n.cfg.N,
		Interval:        n.cfg.TransferInterval,
		Rate:            zeroIsOff(n.cfg.TransferRate),
		AutoRemoveAfter: n.cfg.AutoRemoveAfter,
		AntiEntropy:     n.cfg.AntiEntropy,
		Logger:          n.log,
		Registerer:      n.metrics.reg,
	})
	if err != nil {
		return err
	}
	n.transfer = t
	handleKinds(n, t.Kinds(), t.Handle)
	return nil
}

// transferStats adds transfer's figures to NodeInfo.
func (n *Node) transferStats(stats map[string]float64, detail map[string]any) {
	s := n.transfer.Stats()
	stats["partitions_held"] = float64(s.PartitionsHeld)
	stats["partitions_syncing"] = float64(s.PartitionsSyncing)
	stats["transfer_keys_received"] = float64(s.KeysReceived)
	stats["transfer_bytes_received"] = float64(s.BytesReceived)
	if len(s.Pulls) > 0 {
		detail["transfers"] = s.Pulls
	}
	if len(s.Events) > 0 {
		detail["ownership_events"] = s.Events
	}
}

// transferCluster is the node as ownership transfer sees it.
type transferCluster Node

func (c *transferCluster) Self() ring.NodeID         { return c.self }
func (c *transferCluster) Alive(id ring.NodeID) bool { return (*Node)(c).alive(id) }
func (c *transferCluster) Joined() bool              { return (*Node)(c).joined() }

func (c *transferCluster) View() transfer.View {
	v := c.view.Load()
	if v == nil {
		return transfer.View{}
	}
	return transfer.View{Ring: v.ring, Future: v.future, Members: v.members}
}

func (c *transferCluster) DeadSince(id ring.NodeID) (time.Time, bool) {
	g := c.gsp.Load()
	if g == nil || id == c.self {
		return time.Time{}, false
	}
	m, ok := g.Member(string(id))
	if !ok || g.Alive(string(id)) {
		return time.Time{}, false
	}
	return m.Since, true
}

func (c *transferCluster) Call(ctx context.Context, to ring.NodeID, kind transfer.Kind, payload []byte) ([]byte, error) {
	return (*cluster)(c).call(ctx, to, wire.Kind(kind), payload)
}

func (c *transferCluster) SetSelfStatus(s ring.Status) { (*Node)(c).setSelfStatus(s) }

func (c *transferCluster) Remove(id ring.NodeID) error { return (*Node)(c).removeMember(id, false) }

func (c *transferCluster) Leave() {
	n := (*Node)(c)
	if g := n.gsp.Load(); g != nil {
		g.Leave(2 * time.Second)
	}
	select {
	case n.done <- ErrLeft:
	default:
	}
}

func (n *Node) handleLeave(ctx context.Context, payload []byte) (any, error) {
	v := n.view.Load()
	if m := v.members[n.self]; m.Status != ring.Active && m.Status != ring.Leaving {
		return nil, wire.Errorf(wire.CodeBadRequest, "node %s is %s, not active: it cannot leave", n.self, m.Status)
	}
	if len(v.state.WithStatus(ring.Active)) <= 1 {
		return nil, wire.Errorf(wire.CodeBadRequest, "node %s is the last active member: there is nobody to hand its data to", n.self)
	}
	n.log.Info().Msg("leave requested: handing partitions to their new owners")
	n.setSelfStatus(ring.Leaving)
	n.transfer.Signal()
	return []byte{}, nil
}

func (n *Node) handleRemove(ctx context.Context, payload []byte) (any, error) {
	var req proto.RemoveRequest
	if err := decode(payload, &req); err != nil {
		return nil, err
	}
	id := ring.NodeID(req.ID)
	if id == n.self {
		return nil, wire.Errorf(wire.CodeBadRequest, "a node cannot remove itself; use mnemo leave")
	}
	if err := n.removeMember(id, req.Force); err != nil {
		return nil, err
	}
	return []byte{}, nil
}

// removeMember marks a dead member removed; the survivors then pull its
// partitions from the remaining replicas.
func (n *Node) removeMember(id ring.NodeID, force bool) error {
	n.stateMu.Lock()
	m, ok := n.state.Member(id)
	if !ok {
		n.stateMu.Unlock()
		return wire.Errorf(wire.CodeBadRequest, "no member %q in the ring", id)
	}
	if m.Status == ring.Removed {
		n.stateMu.Unlock()
		return nil
	}
	if n.alive(id) && !force {
		n.stateMu.Unlock()
		return wire.Errorf(wire.CodeBadRequest, "member %s is alive: use mnemo leave on it (or force)", id)
	}
	m.Status = ring.Removed
	n.state.Update(m)
	n.stateMu.Unlock()
	n.log.Warn().Str("member", string(id)).Msg("member removed from the ring; its partitions are re-replicated")
	n.publishView()
	if g := n.gsp.Load(); g != nil {
		g.BroadcastState()
	}
	return nil
}

// setSelfStatus changes this node's own ring entry, persists it for the
// next start and spreads it.
func (n *Node) setSelfStatus(s ring.Status) {
	n.stateMu.Lock()
	n.selfEntry.Status = s
	if cur, ok := n.state.Member(n.self); ok {
		n.selfEntry.Version = cur.Version
	}
	n.state.Update(n.selfEntry)
	n.stateMu.Unlock()
	if err := n.transfer.PersistStatus(s); err != nil {
		n.log.Error().Err(err).Msg("persist ring status")
	}
	n.publishView()
	if g := n.gsp.Load(); g != nil {
		g.BroadcastState()
	}
}

var _ transfer.Cluster = (*transferCluster)(nil)
