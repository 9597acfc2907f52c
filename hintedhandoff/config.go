package hintedhandoff

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

// Cluster is what the handoff needs to know about the cluster; the node
// implements it over gossip, the ring and its wire.Pool. Its methods are
// called from the handoff's goroutines, concurrently, and must not call back
// into the Handoff.
type Cluster interface {
	// Self is this node's id.
	Self() ring.NodeID
	// Alive reports whether gossip sees id alive now.
	Alive(id ring.NodeID) bool
	// IsHome reports whether id is one of key's home replicas (the first N
	// of its preference list) in the current ring.
	IsHome(key []byte, id ring.NodeID) bool
	// Call sends one request to a node's RPC port and returns the reply
	// body, or an error (a *wire.Error for an error the node answered).
	Call(ctx context.Context, to ring.NodeID, kind Kind, payload []byte) ([]byte, error)
}

// Config configures a Handoff. Zero fields take the defaults of
// DefaultConfig; Store and Cluster are required.
type Config struct {
	// Store is this node's store: hints live in its store.AuxHints keyspace
	// and received batches are merged into it. Required.
	Store *store.Store
	// Cluster answers liveness and placement questions and carries calls.
	// Required.
	Cluster Cluster

	// Window is how long a hint is kept after it was created (its first
	// write; a write merged into an already expired hint renews it); older
	// hints are dropped unsent and anti-entropy repairs the target
	// instead. --hint-window. Default 3 h.
	Window time.Duration
	// CheckInterval is how often alive targets with pending hints are
	// replayed without a rejoin event: it resumes interrupted replays and
	// delivers hints added while a target was briefly seen dead. Default 5 s.
	CheckInterval time.Duration
	// SweepInterval is how often every hint is scanned for expiry,
	// including those of targets that stay dead. Default 10 min.
	SweepInterval time.Duration
	// CallTimeout bounds one batch call to a target. Default 10 s.
	CallTimeout time.Duration

	// Rate is the replay throttle in objects per second, for all targets
	// together (one token bucket whose burst is one batch). --hint-rate.
	// Default 10000.
	Rate int
	// BatchSize is the most objects sent in one call. Default 256.
	BatchSize int
	// BatchBytes ends a batch once its objects reach this many encoded
	// bytes; a single larger hint is sent alone. At most MaxBatchBytes.
	// Default 1 MiB.
	BatchBytes int
	// MaxReplays bounds replays to different targets running at once.
	// Default 4.
	MaxReplays int

	// Logger receives replay start and finish lines and errors. The zero
	// Logger discards them.
	Logger zerolog.Logger
	// Registerer, when set, gets the mnemo_hints_* metrics; Close
	// unregisters them.
	Registerer prometheus.Registerer
	// Now is the clock for hint creation and expiry (not for the throttle,
	// which uses the monotonic clock). Default time.Now.
	Now func() time.Time
}

// Limits.
const (
	// MaxBatchBytes bounds Config.BatchBytes: half of the wire's default
	// frame limit (8 MiB), so that a batch of hints each under the store's
	// value limit always fits in a frame.
	MaxBatchBytes = 4 << 20
	// MaxBatchItems is the most objects a received batch may hold.
	MaxBatchItems = 4096
	// maxTargetLen bounds a target node id in bytes (gossip's limit).
	maxTargetLen = 255
)

// DefaultConfig returns the defaults; Store and Cluster must still be set.
func DefaultConfig() Config {
	return Config{
		Window:        3 * time.Hour,
		CheckInterval: 5 * time.Second,
		SweepInterval: 10 * time.Minute,
		CallTimeout:   10 * time.Second,
		Rate:          10000,
		BatchSize:     256,
		BatchBytes:    1 << 20,
		MaxReplays:    4,
		Now:           time.Now,
	}
}

// Validate reports every bad field at once. Zero durations and counts are
// fine: they take defaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("hintedhandoff: config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Store == nil {
		bad("Store", "is required")
	}
	if c.Cluster == nil {
		bad("Cluster", "is required")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Window", c.Window}, {"CheckInterval", c.CheckInterval}, {"SweepInterval", c.SweepInterval}, {"CallTimeout", c.CallTimeout}} {
		if d.v < 0 {
			bad(d.name, "must not be negative, got %v", d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"Rate", c.Rate}, {"BatchSize", c.BatchSize}, {"BatchBytes", c.BatchBytes}, {"MaxReplays", c.MaxReplays}} {
		if n.v < 0 {
			bad(n.name, "must not be negative, got %d", n.v)
		}
	}
	if c.BatchSize > MaxBatchItems {
		bad("BatchSize", "%d exceeds %d", c.BatchSize, MaxBatchItems)
	}
	if c.BatchBytes > MaxBatchBytes {
		bad("BatchBytes", "%d exceeds %d", c.BatchBytes, MaxBatchBytes)
	}
	return errors.Join(errs...)
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Window == 0 {
		c.Window = d.Window
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = d.CheckInterval
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = d.SweepInterval
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = d.CallTimeout
	}
	if c.Rate == 0 {
		c.Rate = d.Rate
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = d.BatchBytes
	}
	if c.MaxReplays == 0 {
		c.MaxReplays = d.MaxReplays
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c
}
