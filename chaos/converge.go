package chaos

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/poll"
	"github.com/mnemo-kv/mnemo/ring"
)

// clusterView is what the checker knows of the cluster: node ids and
// addresses, and the ring, to find each key's home replicas.
type clusterView struct {
	cl    *client.Client
	ids   []string
	addrs []string
	index map[string]int // id -> position in ids
	ring  *ring.Ring
	n     int
	// timeout bounds each read and status call.
	timeout time.Duration
}

func newClusterView(cl *client.Client, ids, addrs []string, partitions, n int) (*clusterView, error) {
	var rn []ring.Node
	v := &clusterView{cl: cl, ids: ids, addrs: addrs, index: map[string]int{}, n: n, timeout: 5 * time.Second}
	for i, id := range ids {
		rn = append(rn, ring.Node{ID: ring.NodeID(id)})
		v.index[id] = i
	}
	r, err := ring.New(partitions, rn)
	if err != nil {
		return nil, err
	}
	v.ring = r
	return v, nil
}

// home returns the positions of key's home replicas.
func (v *clusterView) home(key string) []int {
	var out []int
	for _, id := range v.ring.Home(v.ring.PartitionForKey([]byte(key)), v.n) {
		out = append(out, v.index[string(id)])
	}
	return out
}

// checkRing compares the checker's ring with the cluster's: each member's
// count of owned partitions.
func (v *clusterView) checkRing(st *client.Status) error {
	if st.Partitions != v.ring.Partitions() {
		return fmt.Errorf("chaos: the cluster has %d partitions, the checker's ring %d", st.Partitions, v.ring.Partitions())
	}
	for _, m := range st.Members {
		if got := len(v.ring.Owned(ring.NodeID(m.ID), v.n)); got != m.Owned {
			return fmt.Errorf("chaos: %s owns %d partitions, the checker's ring says %d: the placement differs", m.ID, m.Owned, got)
		}
	}
	return nil
}

// waitRingActive waits until every node answers status with the same ring
// (digest) and every member active: the placement the checker computes is
// then the cluster's. A node on a wiped directory may rejoin as joining
// and pull its partitions first (ownership transfer).
func (v *clusterView) waitRingActive(ctx context.Context) error {
	var settled error // checkRing's verdict on the settled ring
	err := poll.Until(ctx, 0, 100*time.Millisecond, "chaos: the ring settled with every node active", func() (bool, string) {
		var digest uint64
		for i, addr := range v.addrs {
			sctx, cancel := context.WithTimeout(ctx, v.timeout)
			st, err := v.cl.Status(sctx, client.Node(addr))
			cancel()
			if err != nil {
				return false, fmt.Sprintf("%s: status: %v", v.ids[i], err)
			}
			if i == 0 {
				digest = st.RingDigest
			} else if st.RingDigest != digest {
				return false, fmt.Sprintf("%s has ring %016x, %s %016x", v.ids[0], digest, v.ids[i], st.RingDigest)
			}
			active := 0
			for _, m := range st.Members {
				if _, ours := v.index[m.ID]; ours && m.Ring == "active" {
					active++
				} else {
					return false, fmt.Sprintf("%s sees %s %s", v.ids[i], m.ID, m.Ring)
				}
			}
			if active != len(v.ids) {
				return false, fmt.Sprintf("%s sees %d of %d members active", v.ids[i], active, len(v.ids))
			}
		}
		sctx, cancel := context.WithTimeout(ctx, v.timeout)
		st, err := v.cl.Status(sctx, client.Node(v.addrs[0]))
		cancel()
		if err != nil {
			return false, err.Error()
		}
		settled = v.checkRing(st)
		return true, ""
	})
	if err != nil {
		return err
	}
	return settled
}

// livenessViews says, for each node, which members it does not see alive
// (or that it did not answer): what a membership that did not converge
// looks like, e.g. the two sides of a partition that never re-merged.
func (v *clusterView) livenessViews(ctx context.Context) string {
	var parts []string
	for i, addr := range v.addrs {
		sctx, cancel := context.WithTimeout(ctx, v.timeout)
		st, err := v.cl.Status(sctx, client.Node(addr))
		cancel()
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s: no status (%v)", v.ids[i], err))
			continue
		}
		var not []string
		for _, m := range st.Members {
			if m.Liveness != "alive" {
				not = append(not, m.ID+" "+m.Liveness)
			}
		}
		if len(not) == 0 {
			not = []string{"all alive"}
		}
		parts = append(parts, fmt.Sprintf("%s sees %s", v.ids[i], strings.Join(not, ", ")))
	}
	return strings.Join(parts, "; ")
}

// errNoRoots: no node reports Merkle roots (anti-entropy is not wired in).
var errNoRoots = errors.New("chaos: the nodes report no Merkle roots")

// Converged is the one place that decides whether the replicas agree after
// the final heal: it returns whether they do and, when not, what differs.
// criterion is merkle, local or auto (merkle when the nodes report roots).
// It also returns the criterion it used.
//
// NB: auto uses the roots as soon as the nodes report them; to require
// them (fail rather than fall back), make auto mean merkle here.
func (v *clusterView) Converged(ctx context.Context, criterion string, keys []string) (ok bool, detail, used string, err error) {
	switch criterion {
	case "merkle":
		ok, detail, err = v.merkleRootsEqual(ctx)
		return ok, detail, "merkle", err
	case "local":
		ok, detail, err = v.localCopiesEqual(ctx, keys)
		return ok, detail, "local", err
	}
	ok, detail, err = v.merkleRootsEqual(ctx)
	if errors.Is(err, errNoRoots) {
		ok, detail, err = v.localCopiesEqual(ctx, keys)
		return ok, detail, "local", err
	}
	return ok, detail, "merkle", err
}

// merkleRootsEqual is true when, for every partition, every home replica
// reports the same Merkle root. It reads them from status: each node's
// Info.AntiEntropy.Roots, for the partitions whose trees are built. It
// returns errNoRoots when no node reports any.
func (v *clusterView) merkleRootsEqual(ctx context.Context) (bool, string, error) {
	roots := make([]map[uint32]uint64, len(v.ids))
	for i, addr := range v.addrs {
		sctx, cancel := context.WithTimeout(ctx, v.timeout)
		st, err := v.cl.Status(sctx, client.Node(addr))
		cancel()
		if err != nil {
			return false, fmt.Sprintf("%s: status: %v", v.ids[i], err), nil
		}
		for _, m := range st.Members {
			if m.ID == v.ids[i] && m.Info != nil {
				roots[i] = m.Info.AntiEntropy.Roots
			}
		}
	}
	if !slices.ContainsFunc(roots, func(r map[uint32]uint64) bool { return len(r) > 0 }) {
		return false, "", errNoRoots
	}
	for p := range v.ring.Partitions() {
		var first uint64
		for j, id := range v.ring.Home(ring.Partition(p), v.n) {
			i := v.index[string(id)]
			r, ok := roots[i][uint32(p)]
			if !ok {
				return false, fmt.Sprintf("partition %d: %s reports no root (tree not built?)", p, id), nil
			}
			if j == 0 {
				first = r
			} else if r != first {
				return false, fmt.Sprintf("partition %d: roots differ (%s %016x)", p, id, r), nil
			}
		}
	}
	return true, "", nil
}

// localCopiesEqual is true when every home replica's stored copy of every
// key is the same: the same siblings (dots, tombstones, values).
func (v *clusterView) localCopiesEqual(ctx context.Context, keys []string) (bool, string, error) {
	var (
		mu   sync.Mutex
		diff string
	)
	var g errgroup.Group
	g.SetLimit(8)
	for _, k := range keys {
		mu.Lock()
		found := diff != ""
		mu.Unlock()
		if found || ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if d := v.compareKey(ctx, k); d != "" {
				mu.Lock()
				if diff == "" {
					diff = d
				}
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait() // the workers return no error
	if ctx.Err() != nil && diff == "" {
		return false, "", ctx.Err()
	}
	return diff == "", diff, nil
}

// compareKey returns how key's home replicas differ, or "".
func (v *clusterView) compareKey(ctx context.Context, key string) string {
	var first string
	for j, i := range v.home(key) {
		sig, err := v.localSignature(ctx, key, i)
		if err != nil {
			return fmt.Sprintf("%s on %s: %v", key, v.ids[i], err)
		}
		if j == 0 {
			first = sig
		} else if sig != first {
			return fmt.Sprintf("%s: %s holds %s, %s holds %s", key, v.ids[v.home(key)[0]], first, v.ids[i], sig)
		}
	}
	return ""
}

// localSignature summarises node i's stored copy of key.
func (v *clusterView) localSignature(ctx context.Context, key string, i int) (string, error) {
	rctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	res, err := v.cl.Get(rctx, []byte(key), client.Local(), client.Node(v.addrs[i]), client.IncludeTombstones(), client.Siblings())
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		return "", err
	}
	if res == nil || len(res.Siblings) == 0 {
		return "[]", nil
	}
	var parts []string
	for _, s := range res.Siblings {
		h := fnv.New64a()
		h.Write(s.Value)
		parts = append(parts, fmt.Sprintf("%s:%d:%t:%x", s.Actor, s.Counter, s.Tombstone, h.Sum64()))
	}
	slices.Sort(parts)
	return "[" + strings.Join(parts, " ") + "]", nil
}

// observe reads key at R=N and from each home replica's stored copy: the
// views the checker checks. A failed quorum read is retried a few times.
func (v *clusterView) observe(ctx context.Context, key string, lww bool) []Observation {
	mode := client.Siblings()
	if lww {
		mode = client.LWW()
	}
	var out []Observation
	q := Observation{Where: "quorum"}
	for attempt := range 4 {
		rctx, cancel := context.WithTimeout(ctx, v.timeout)
		res, err := v.cl.Get(rctx, []byte(key), client.R(v.n), client.N(v.n), mode)
		cancel()
		if err == nil || errors.Is(err, client.ErrNotFound) {
			q.Err = ""
			if res != nil {
				q.Values = res.Values
			}
			break
		}
		q.Err = err.Error()
		if attempt < 3 {
			time.Sleep(250 * time.Millisecond)
		}
	}
	out = append(out, q)
	for _, i := range v.home(key) {
		o := Observation{Where: v.ids[i]}
		rctx, cancel := context.WithTimeout(ctx, v.timeout)
		res, err := v.cl.Get(rctx, []byte(key), client.Local(), client.Node(v.addrs[i]), mode)
		cancel()
		switch {
		case err == nil || errors.Is(err, client.ErrNotFound):
			if res != nil {
				o.Values = res.Values
			}
		default:
			o.Err = err.Error()
		}
		out = append(out, o)
	}
	return out
}

// sweep reads every key at R=N, for read repair (Config.RepairSweep).
func (v *clusterView) sweep(ctx context.Context, keys []string) {
	var g errgroup.Group
	g.SetLimit(8)
	for _, k := range keys {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			rctx, cancel := context.WithTimeout(ctx, v.timeout)
			v.cl.Get(rctx, []byte(k), client.R(v.n), client.N(v.n))
			cancel()
			return nil
		})
	}
	_ = g.Wait() // the reads' outcomes are not needed: they repair
}
