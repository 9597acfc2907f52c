package node

// Tombstones: a delete is a tombstone that replicates like a value, so a
// replica that missed the delete learns it instead of resurrecting the old
// value. Tombstones are reaped after --tombstone-grace (Cassandra's
// gc_grace_seconds). That is safe only for replicas that were never away
// longer than the grace: one that was could still hold the old value while
// every other replica has forgotten the delete, and anti-entropy would then
// copy the old value back. So each node records when it was last alive, and
// one that finds it was away longer than the grace refuses to start (the
// default) or, with --stale-data rejoin-empty, moves its data aside and
// rejoins empty, refilled by ownership transfer like a new node.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mnemo-kv/mnemo/config"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
	"github.com/mnemo-kv/mnemo/version"
)

const metaAliveAt = "alive-at"

// ErrStaleData is returned by New when the node was away longer than the
// tombstone grace and the policy is to refuse.
var ErrStaleData = errors.New("node: data is older than the tombstone grace")

// aliveInterval is how often the node records that it is alive.
func (n *Node) aliveInterval() time.Duration {
	return min(10*time.Second, max(n.cfg.TombstoneGrace/4, 100*time.Millisecond))
}

// checkStale applies the stale-data policy to a freshly opened store. It
// returns the store to use (reopened when the data was moved aside).
func (n *Node) checkStale(st *store.Store, opts store.Options) (*store.Store, error) {
	raw, err := st.Meta(metaAliveAt)
	if err != nil || len(raw) != 8 {
		return st, err
	}
	last := time.Unix(0, int64(binary.BigEndian.Uint64(raw)))
	away := time.Since(last)
	if away <= n.cfg.TombstoneGrace {
		return st, nil
	}
	switch n.cfg.StaleData {
	case config.StaleKeep:
		n.log.Warn().Dur("away", away).Dur("tombstone_grace", n.cfg.TombstoneGrace).
			Msg("this node was away longer than the tombstone grace; keeping its data as told (deleted keys may come back)")
		return st, nil
	case config.StaleRejoinEmpty:
		st.Close()
		aside := fmt.Sprintf("%s.stale-%s", n.cfg.Data, time.Now().UTC().Format("20060102T150405"))
		if err := os.Rename(n.cfg.Data, aside); err != nil {
			return nil, fmt.Errorf("node: move stale data aside: %w", err)
		}
		n.log.Warn().Dur("away", away).Dur("tombstone_grace", n.cfg.TombstoneGrace).Str("moved_to", aside).
			Msg("this node was away longer than the tombstone grace: its data was moved aside and it rejoins empty")
		return store.Open(opts)
	default:
		st.Close()
		return nil, fmt.Errorf("%w: this node was last alive %s ago (at %s), longer than --tombstone-grace %s, so its data may bring back keys the cluster has deleted and forgotten. "+
			"To rejoin empty and be refilled by the other replicas, start it with --stale-data rejoin-empty (its data directory is moved aside, not deleted). "+
			"If the whole cluster was down together, start with --stale-data keep",
			ErrStaleData, away.Round(time.Second), last.UTC().Format(time.RFC3339), n.cfg.TombstoneGrace)
	}
}

// markAlive records that this node is alive now.
func (n *Node) markAlive() error {
	return n.store.SetMeta(metaAliveAt, binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano())))
}

// housekeeping records liveness and reaps old tombstones until Close.
func (n *Node) housekeeping() {
	defer n.wg.Done()
	alive := time.NewTicker(n.aliveInterval())
	defer alive.Stop()
	reapEvery := min(time.Hour, max(n.cfg.TombstoneGrace/4, 250*time.Millisecond))
	reap := time.NewTicker(reapEvery)
	defer reap.Stop()
	for {
		select {
		case <-n.bg.Done():
			return
		case <-alive.C:
			if err := n.markAlive(); err != nil && n.bg.Err() == nil {
				n.log.Warn().Err(err).Msg("record alive time")
			}
		case <-reap.C:
			if k, err := n.reapTombstones(); err != nil && n.bg.Err() == nil {
				n.log.Warn().Err(err).Msg("reap tombstones")
			} else if k > 0 {
				n.log.Info().Int("keys", k).Msg("reaped tombstones older than the grace")
			}
		}
	}
}

// reapTombstones deletes keys whose every sibling is a tombstone older than
// the grace. It returns how many it deleted.
func (n *Node) reapTombstones() (int, error) {
	cutoff := time.Now().Add(-n.cfg.TombstoneGrace).UnixNano()
	expired := func(o *version.Object) bool {
		return len(o.Siblings) > 0 && o.Deleted() && o.MaxTimestamp() < cutoff
	}
	reaped := 0
	for p := range n.cfg.Partitions {
		if n.bg.Err() != nil {
			return reaped, nil
		}
		if c := n.store.PartitionCounts(ring.Partition(p)); c.Tombstones == 0 {
			continue
		}
		var keys [][]byte
		err := n.store.ScanPartition(ring.Partition(p), 0, uint32(n.cfg.Segments), func(e store.Entry) bool {
			if expired(e.Object) {
				keys = append(keys, e.Key)
			}
			return true
		})
		if err != nil {
			return reaped, err
		}
		for _, k := range keys {
			if del, err := n.store.DeleteIf(k, expired); err != nil {
				return reaped, err
			} else if del {
				reaped++
				n.metrics.tombstonesReaped.Inc()
			}
		}
	}
	return reaped, nil
}
