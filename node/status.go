package node

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
)

// statsSource fills its subsystem's report in this node's NodeInfo (each
// source its own field: AntiEntropy, Handoff, Ownership).
type statsSource func(info *proto.NodeInfo)

func (n *Node) storeCounts() store.Counts {
	if n.store == nil {
		return store.Counts{}
	}
	return n.store.Counts()
}

// nodeInfo is this node's own report.
func (n *Node) nodeInfo() *proto.NodeInfo {
	c := n.storeCounts()
	info := &proto.NodeInfo{
		ID:          string(n.self),
		Epoch:       n.store.Epoch(),
		Version:     Version,
		StartedUnix: n.started.Unix(),
		Keys:        c.Live,
		Tombstones:  c.Tombstones,
		ReadRepairs: uint64(counterValue(n.metrics.readRepairs)),
	}
	for _, src := range n.statsSources {
		src(info)
	}
	return info
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil || m.Counter == nil {
		return 0
	}
	return m.Counter.GetValue()
}

func (n *Node) liveness(id ring.NodeID) string {
	if id == n.self {
		return "alive"
	}
	g := n.gsp.Load()
	if g == nil {
		return "unknown"
	}
	m, ok := g.Member(string(id))
	if !ok {
		return "unknown"
	}
	return m.State.String()
}

func (n *Node) handleStatus(ctx context.Context, payload []byte) (any, error) {
	var req proto.StatusRequest
	if err := decode(payload, &req); err != nil {
		return nil, err
	}
	timeout := 2 * time.Second
	if req.TimeoutMs > 0 {
		timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return n.Status(ctx), nil
}

// Status reports the cluster as this node sees it: ring members, their
// liveness and ownership, and each live member's own figures.
func (n *Node) Status(ctx context.Context) *proto.Status {
	v := n.view.Load()
	st := &proto.Status{
		Node:       string(n.self),
		Partitions: v.state.Partitions,
		N:          n.cfg.N,
		R:          n.cfg.R,
		W:          n.cfg.W,
		Conflicts:  n.cfg.Conflicts.String(),
		RingDigest: v.state.Digest(),
	}
	primary := map[ring.NodeID]int{}
	for p := range v.state.Partitions {
		if pl := v.ring.Home(ring.Partition(p), 1); len(pl) > 0 {
			primary[pl[0]]++
		}
	}
	ids := make([]ring.NodeID, 0, len(v.members))
	for id := range v.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	st.Members = make([]proto.MemberStatus, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		m := v.members[id]
		ms := &st.Members[i]
		*ms = proto.MemberStatus{
			ID: string(id), Zone: m.Zone, Ring: m.Status.String(), Liveness: n.liveness(id),
			RPCAddr: m.RPCAddr, HTTPAddr: m.HTTPAddr, GossipAddr: m.GossipAddr, RESPAddr: m.RESPAddr,
			Owned: len(v.ring.Owned(id, n.cfg.N)), Primary: primary[id],
		}
		if id == n.self {
			ms.Info = n.nodeInfo()
			continue
		}
		if !n.alive(id) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, resp, err := n.pool.Call(ctx, m.RPCAddr, proto.KindNodeInfo, nil)
			if err != nil {
				ms.Error = err.Error()
				return
			}
			var info proto.NodeInfo
			if err := wire.Unmarshal(resp, &info); err != nil {
				ms.Error = err.Error()
				return
			}
			ms.Info = &info
		}()
	}
	wg.Wait()
	return st
}
