package transfer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
)

// Cluster is what ownership transfer needs of the node: who it is, the
// ring as the node sees it, who is alive, a way to call a peer, and the
// few ring changes transfer decides (this node's own status, removing a
// dead member, leaving). The node implements it over gossip, its ring
// state and its wire.Pool. Its methods are called from the transfer loop
// and from Handle, concurrently, and must not call back into the Transfer
// except for PersistStatus (which SetSelfStatus may call).
type Cluster interface {
	// Self is this node's id.
	Self() ring.NodeID
	// View is the ring as this node knows it now: one consistent
	// snapshot, which the caller must not modify.
	View() View
	// Alive reports whether gossip sees id alive now; Self always is.
	Alive(id ring.NodeID) bool
	// DeadSince reports since when gossip has seen id not alive (suspect,
	// dead or left), and false when id is alive or gossip does not know it.
	DeadSince(id ring.NodeID) (since time.Time, dead bool)
	// Joined reports whether this node has reached the cluster it was told
	// to join (always true for a node that founds one): until then a
	// joining node decides nothing from a ring that holds only itself.
	Joined() bool
	// Call sends one request to a peer's RPC port and returns the reply
	// body, or an error (a *wire.Error for an error the peer answered).
	Call(ctx context.Context, to ring.NodeID, kind Kind, payload []byte) ([]byte, error)
	// SetSelfStatus changes this node's own ring entry and spreads it
	// (Joining -> Active once synced, Leaving -> Removed once handed off).
	SetSelfStatus(s ring.Status)
	// Remove marks a dead member removed from the ring and spreads it
	// (auto-remove). It refuses a member that is alive.
	Remove(id ring.NodeID) error
	// Leave is called once, Config.LeaveGrace after this node marked
	// itself removed: the node leaves gossip and stops (node.ErrLeft).
	Leave()
}

// View is a snapshot of the ring, as ring.State makes it.
type View struct {
	// Ring places data on the members that own it now: active and leaving
	// ones. Pull sources are its home replicas.
	Ring *ring.Ring
	// Future is the ring once joins and leaves complete: active and
	// joining members. A node holds what it owns in Ring or in Future.
	Future *ring.Ring
	// Members are the ring's entries by id, removed ones included (their
	// RPC addresses, statuses). Read-only.
	Members map[ring.NodeID]ring.Member
}

// Throttle paces what a pull receives; *ratelimit.Bucket is one.
type Throttle interface {
	// Wait takes n units (bytes) and blocks until they are earned or ctx
	// ends.
	Wait(ctx context.Context, n int) error
}

// Config configures a Transfer. Zero fields take the defaults of
// DefaultConfig; Store, Cluster and N are required.
type Config struct {
	// Store is this node's store: pulled objects are merged into it,
	// dropped partitions deleted from it, and transfer's state lives in
	// its store.AuxTransfer keyspace. Its partition and segment counts are
	// the cluster's. Required.
	Store *store.Store
	// Cluster is the node. Required.
	Cluster Cluster
	// N is the number of home replicas of a partition (the node's --n): a
	// node holds the partitions it is one of the first N of. Required.
	N int

	// Interval is how often the loop re-checks besides ring changes and
	// rejoins (--transfer-interval). Default 2 s.
	Interval time.Duration
	// Rate bounds what pulls receive, in bytes per second, with bursts of
	// one second's worth (--transfer-rate). Negative: unlimited. Default
	// 64 MiB/s. Ignored when Throttle is set.
	Rate int64
	// Throttle, when set, replaces the token bucket of Rate (tests).
	Throttle Throttle
	// AutoRemoveAfter removes a ring member gossip has seen dead this long
	// (--auto-remove-after). Zero: never (a transient failure moves no
	// data); there is no default.
	AutoRemoveAfter time.Duration
	// AntiEntropy says Merkle anti-entropy runs on this node: a pull then
	// reads one live holder (anti-entropy repairs what it lacked), and a
	// node that adopts its place on an empty directory pulls nothing.
	// Without it, a pull reads every holder.
	AntiEntropy bool

	// BatchBytes is the size of one scan reply a pull asks for; the
	// serving side clamps it to [64 KiB, 4 MiB]. Default 1 MiB.
	BatchBytes int
	// ScanTimeout bounds one scan call to a holder. Default 30 s.
	ScanTimeout time.Duration
	// CheckTimeout bounds one call asking a node which partitions it holds
	// completely. Default 5 s.
	CheckTimeout time.Duration
	// LeaveGrace is how long a leaving node keeps gossiping after it
	// marked itself removed, so the change spreads, before Cluster.Leave.
	// Default 2 s.
	LeaveGrace time.Duration

	// Logger receives gains, losses, drops and errors. The zero Logger
	// discards them.
	Logger zerolog.Logger
	// Registerer, when set, gets the mnemo_transfer_* metrics; Close
	// unregisters them.
	Registerer prometheus.Registerer
	// Now is the clock for event times and auto-remove. Default time.Now.
	Now func() time.Time
}

// Limits of a scan reply, whatever the asker wants (bytes).
const (
	minScanBytes = 64 << 10
	maxScanBytes = 4 << 20
)

// MaxEvents is how many ownership events a Transfer keeps for
// KindOwnershipEvents; older ones are forgotten.
const MaxEvents = 1000

// DefaultConfig returns the defaults; Store, Cluster and N must still be set.
func DefaultConfig() Config {
	return Config{
		Interval:     2 * time.Second,
		Rate:         64 << 20,
		BatchBytes:   1 << 20,
		ScanTimeout:  30 * time.Second,
		CheckTimeout: 5 * time.Second,
		LeaveGrace:   2 * time.Second,
		Now:          time.Now,
	}
}

// Validate reports every bad field at once. Zero durations and sizes are
// fine: they take defaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("transfer: config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Store == nil {
		bad("Store", "is required")
	}
	if c.Cluster == nil {
		bad("Cluster", "is required")
	}
	if c.N <= 0 {
		bad("N", "must be positive, got %d", c.N)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Interval", c.Interval}, {"AutoRemoveAfter", c.AutoRemoveAfter}, {"ScanTimeout", c.ScanTimeout}, {"CheckTimeout", c.CheckTimeout}, {"LeaveGrace", c.LeaveGrace}} {
		if d.v < 0 {
			bad(d.name, "must not be negative, got %v", d.v)
		}
	}
	if c.BatchBytes < 0 {
		bad("BatchBytes", "must not be negative, got %d", c.BatchBytes)
	}
	return errors.Join(errs...)
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.Rate == 0 {
		c.Rate = d.Rate
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = d.BatchBytes
	}
	if c.ScanTimeout == 0 {
		c.ScanTimeout = d.ScanTimeout
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = d.CheckTimeout
	}
	if c.LeaveGrace == 0 {
		c.LeaveGrace = d.LeaveGrace
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c
}
