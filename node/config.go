package node

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mnemo-kv/mnemo/antientropy"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/security"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
)

// Config is everything a node is started with. Every field is one setting
// of `mnemo node` (the flag of the same name, or the key of the same name in
// a config file); DefaultConfig gives the defaults below.
type Config struct {
	// ID names the node; stable across restarts. Default: the host name.
	ID string
	// Data is the data directory. Default "./data-<id>".
	Data string
	// Zone is the failure zone (rack, AZ); replicas spread across zones.
	Zone string
	// Gossip is the memberlist bind address (TCP and UDP). Default 127.0.0.1:7946.
	Gossip string
	// RPC is the client and peer RPC address. Default 127.0.0.1:7000.
	RPC string
	// HTTP is the admin address (/metrics, /status, /healthz); empty disables it.
	HTTP string
	// RESP is the Redis-protocol address; empty disables it.
	RESP string
	// Join lists gossip addresses of existing members; empty starts a cluster.
	Join []string
	// Partitions is Q, fixed at cluster creation. Default 256.
	Partitions int
	// Segments is anti-entropy segments per partition, fixed at creation. Default 1024.
	Segments int
	// N, R, W are the request defaults: replicas, read and write quorums. Default 3/2/2.
	N, R, W int
	// Sync is the durability mode. Default always (survives kill -9).
	Sync store.SyncMode
	// SyncInterval is how often batch mode fsyncs. Default 10ms.
	SyncInterval time.Duration
	// SyncMinGap is, in always mode, the least time between two fsyncs:
	// writes that come meanwhile share the next (0: fsync at once).
	// Default 500us.
	SyncMinGap time.Duration
	// Conflicts is the cluster's conflict mode. Default siblings.
	Conflicts proto.Mode
	// Timeout bounds a request when the caller sets none. Default 5s.
	Timeout time.Duration
	// MaxKeySize and MaxValueSize in bytes. Default 64 KiB and 1 MiB.
	MaxKeySize, MaxValueSize int
	// ReadRepair repairs stale replicas after quorum reads. Default true.
	ReadRepair bool
	// ReadRepairWait is how long a read keeps collecting replies after
	// answering, to repair the replicas that were slow. Default 1s.
	ReadRepairWait time.Duration
	// CacheSize is Pebble's block cache in bytes. Default 32 MiB.
	CacheSize int64
	// ObjectCacheSize is the budget in bytes of the store's cache of the
	// versions of recent keys (store.Options.ObjectCacheSize; 0 turns it
	// off). Default 16 MiB.
	ObjectCacheSize int64
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string
	// LogFormat is auto (console on a terminal, else JSON), json or console.
	LogFormat string
	// TransferInterval is how often ownership transfer re-checks what this
	// node should hold, besides every ring change. Default 2s.
	TransferInterval time.Duration
	// TransferRate bounds ownership-transfer traffic, bytes per second
	// received by this node. Default 64 MiB/s.
	TransferRate int64
	// AutoRemoveAfter removes a member from the ring once it has been dead
	// this long; 0 (the default) never does: a transient failure must move
	// no data.
	AutoRemoveAfter time.Duration
	// TombstoneGrace is how long a delete's tombstone is kept before it is
	// reaped; a node down longer than this rejoins empty. Default 24h.
	TombstoneGrace time.Duration
	// Hints turns on hinted handoff. Default true.
	Hints bool
	// HintWindow is how long a hint is kept for a dead node before it
	// expires (anti-entropy covers the rest). Default 3h.
	HintWindow time.Duration
	// HintRate bounds hint replay, objects per second. Default 10000.
	HintRate int
	// AntiEntropy runs Merkle anti-entropy. Default true.
	AntiEntropy bool
	// AEInterval is how often each partition is exchanged with each of its
	// other replicas. Default 1m.
	AEInterval time.Duration
	// AERate bounds anti-entropy traffic sent by this node, bytes per
	// second. Default 64 MiB/s.
	AERate int64
	// AECPU is the share of one CPU anti-entropy's own work (tree verification,
	// scans, merges) may take while the node serves client requests; 0
	// leaves it unbounded. Default antientropy.DefaultCPUShare (0.1).
	AECPU float64
	// StaleData says what a node does when it finds it was away longer
	// than TombstoneGrace: refuse (the default) to start, rejoin-empty
	// (move the data aside, rejoin as a new member), or keep it.
	StaleData string
	// ClusterName names the cluster on the gossip wire (--cluster-name):
	// nodes drop gossip from nodes with another name, so two clusters on
	// one network never merge. Every member must use the same; empty (the
	// default) sends none.
	ClusterName string
	// GossipProfile is lan (memberlist's LAN timings) or local (loopback:
	// deaths seen in about 2 s). Default local when every address is on
	// loopback, else lan.
	GossipProfile string
	// Security is the one switch for every port (gossip, RPC, RESP, admin
	// HTTP): disabled, transitional or required; see internal/security.
	// Default disabled.
	Security security.Mode
	// Insecure lets a node with Security disabled bind an address outside
	// loopback. Default false: an open node listens on loopback only.
	Insecure bool
	// TLSCert, TLSKey and TLSCA are PEM files: the node's certificate
	// (naming it mnemo://node/<id>), its key, and the CA bundle trusted
	// for peers and clients (one or several CAs, so a CA rotation can
	// trust both). Needed unless Security is disabled.
	TLSCert, TLSKey, TLSCA string
	// TLSReloadInterval is how often the TLS files' content is checked
	// for a change (SIGHUP reloads at once); 0: only on SIGHUP. Default 10s.
	TLSReloadInterval time.Duration
}

// DefaultConfig returns the defaults documented on Config, for a node id.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		ID:             host,
		Gossip:         "127.0.0.1:7946",
		RPC:            "127.0.0.1:7000",
		Partitions:     ring.DefaultPartitions,
		Segments:       1024,
		N:              3,
		R:              2,
		W:              2,
		Sync:           store.SyncAlways,
		SyncInterval:   10 * time.Millisecond,
		SyncMinGap:     500 * time.Microsecond,
		Conflicts:      proto.ModeSiblings,
		Timeout:        5 * time.Second,
		MaxKeySize:     64 << 10,
		MaxValueSize:   1 << 20,
		ReadRepair:     true,
		ReadRepairWait: time.Second,
		CacheSize:      32 << 20,
		LogLevel:       "info",
		LogFormat:      "auto",

		ObjectCacheSize: 16 << 20,

		TransferInterval: 2 * time.Second,
		TransferRate:     64 << 20,
		TombstoneGrace:   24 * time.Hour,
		StaleData:        StaleRefuse,
		Hints:            true,
		HintWindow:       3 * time.Hour,
		HintRate:         10000,
		AntiEntropy:      true,
		AEInterval:       time.Minute,
		AERate:           64 << 20,
		AECPU:            antientropy.DefaultCPUShare,

		TLSReloadInterval: 10 * time.Second,
	}
}

// fieldError is one bad setting.
type fieldError struct{ name, msg string }

// Validate reports every bad field at once, one line each.
// maxSegmentsTotal bounds partitions x segments: 96 MiB of Merkle trees
// and store summary at 24 bytes per segment.
const maxSegmentsTotal = 1 << 22

func (c Config) Validate() error {
	var errs []error
	for _, fe := range c.fieldErrors() {
		errs = append(errs, fmt.Errorf("--%s: %s", fe.name, fe.msg))
	}
	return errors.Join(errs...)
}

func (c Config) fieldErrors() []fieldError {
	var errs []fieldError
	bad := func(name, format string, args ...any) {
		errs = append(errs, fieldError{name, fmt.Sprintf(format, args...)})
	}
	if c.ID == "" {
		bad("id", "must not be empty")
	} else if strings.ContainsAny(c.ID, "#/ \t\n") || len(c.ID) > 128 {
		bad("id", "%q must be at most 128 characters without '#', '/' or spaces", c.ID)
	}
	if c.Data == "" {
		bad("data", "must not be empty")
	}
	for _, a := range []struct{ name, addr string }{{"gossip", c.Gossip}, {"rpc", c.RPC}, {"http", c.HTTP}, {"resp", c.RESP}} {
		if a.addr == "" && (a.name == "gossip" || a.name == "rpc") {
			bad(a.name, "must not be empty")
		} else if a.addr != "" {
			if _, _, err := net.SplitHostPort(a.addr); err != nil {
				bad(a.name, "%q is not host:port", a.addr)
			}
		}
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			bad("join", "%q is not host:port", j)
		}
	}
	if err := ring.ValidPartitions(c.Partitions); err != nil {
		bad("partitions", "%d must be a power of two in [1, 65536]", c.Partitions)
	}
	if c.Segments < 1 || c.Segments > 1<<16 || c.Segments&(c.Segments-1) != 0 {
		bad("segments", "%d must be a power of two in [1, 65536]", c.Segments)
	} else if c.Partitions*c.Segments > maxSegmentsTotal {
		// Merkle trees and the store's summary hold 24 bytes per segment.
		bad("segments", "%d segments per partition x %d partitions is over %d segments in all (%d MiB of trees and summary)",
			c.Segments, c.Partitions, maxSegmentsTotal, c.Partitions*c.Segments*24>>20)
	}
	if c.N < 1 || c.N > 16 {
		bad("n", "%d must be in [1, 16]", c.N)
	}
	if c.R < 1 || c.R > c.N {
		bad("r", "%d must be in [1, n=%d]", c.R, c.N)
	}
	if c.W < 1 || c.W > c.N {
		bad("w", "%d must be in [1, n=%d]", c.W, c.N)
	}
	if c.Conflicts != proto.ModeSiblings && c.Conflicts != proto.ModeLWW {
		bad("conflicts", "must be siblings or lww")
	}
	if c.Timeout <= 0 {
		bad("timeout", "%v must be positive", c.Timeout)
	}
	if c.SyncInterval <= 0 {
		bad("sync-interval", "%v must be positive", c.SyncInterval)
	}
	if c.SyncMinGap < 0 || c.SyncMinGap > 100*time.Millisecond {
		bad("sync-min-gap", "%v must be in [0, 100ms]", c.SyncMinGap)
	}
	if c.MaxKeySize < 1 || c.MaxKeySize > 1<<20 {
		bad("max-key-size", "%d must be in [1, 1MiB]", c.MaxKeySize)
	}
	if c.MaxValueSize < 1 || c.MaxValueSize > 4<<20 {
		bad("max-value-size", "%d must be in [1, 4MiB] (frames are bounded at 8 MiB)", c.MaxValueSize)
	}
	if c.ReadRepairWait < 0 {
		bad("read-repair-wait", "%v must not be negative", c.ReadRepairWait)
	}
	if c.CacheSize < 16<<20 {
		// Pebble charges its memtables (4 MiB, and those being flushed)
		// to the block cache: below this it would hold few blocks or none.
		bad("cache-size", "%d must be at least 16MiB (Pebble counts its memtables against it)", c.CacheSize)
	}
	if c.ObjectCacheSize < 0 {
		bad("object-cache-size", "%d must not be negative (0: off)", c.ObjectCacheSize)
	}
	if c.TransferInterval <= 0 {
		bad("transfer-interval", "%v must be positive", c.TransferInterval)
	}
	if c.TransferRate < 0 {
		bad("transfer-rate", "%d must not be negative (0: unlimited)", c.TransferRate)
	}
	if c.AutoRemoveAfter < 0 {
		bad("auto-remove-after", "%v must not be negative (0: never)", c.AutoRemoveAfter)
	}
	if c.TombstoneGrace <= 0 {
		bad("tombstone-grace", "%v must be positive", c.TombstoneGrace)
	}
	if c.HintWindow <= 0 {
		bad("hint-window", "%v must be positive", c.HintWindow)
	}
	if c.HintRate <= 0 {
		bad("hint-rate", "%d must be positive", c.HintRate)
	}
	if c.AEInterval <= 0 {
		bad("ae-interval", "%v must be positive", c.AEInterval)
	}
	if c.AERate < 0 {
		bad("ae-rate", "%d must not be negative (0: unlimited)", c.AERate)
	}
	if !(c.AECPU >= 0 && c.AECPU <= 1) {
		bad("ae-cpu", "%v must be between 0 and 1 (a share of one CPU; 0: unbounded)", c.AECPU)
	}
	if !slices.Contains([]string{StaleRefuse, StaleRejoinEmpty, StaleKeep}, c.StaleData) {
		bad("stale-data", "%q must be refuse, rejoin-empty or keep", c.StaleData)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("log-level", "%q must be debug, info, warn or error", c.LogLevel)
	}
	if !slices.Contains([]string{"auto", "json", "console"}, c.LogFormat) {
		bad("log-format", "%q must be auto, json or console", c.LogFormat)
	}
	if len(c.ClusterName) > 255 {
		bad("cluster-name", "is %d bytes, limit 255", len(c.ClusterName))
	}
	if !slices.Contains([]string{"", "lan", "local"}, c.GossipProfile) {
		bad("gossip-profile", "%q must be lan or local", c.GossipProfile)
	}
	errs = append(errs, c.securityErrors()...)
	return errs
}

// securityErrors checks the TLS files are given when security is on, and
// that an open node (security disabled) binds only loopback unless
// Insecure says the operator means it (Redis' protected mode, for every
// port).
func (c Config) securityErrors() []fieldError {
	var errs []fieldError
	if c.Security != security.Disabled {
		for _, f := range []struct{ name, v string }{{"tls-cert", c.TLSCert}, {"tls-key", c.TLSKey}, {"tls-ca", c.TLSCA}} {
			if f.v == "" {
				errs = append(errs, fieldError{f.name, fmt.Sprintf("is needed with --security %v (make one with mnemo certs)", c.Security)})
			}
		}
	}
	if c.TLSReloadInterval < 0 {
		errs = append(errs, fieldError{"tls-reload-interval", fmt.Sprintf("%v must not be negative (0: only on SIGHUP)", c.TLSReloadInterval)})
	}
	if c.Security != security.Disabled || c.Insecure {
		return errs
	}
	for _, a := range []struct{ name, addr string }{{"gossip", c.Gossip}, {"rpc", c.RPC}, {"http", c.HTTP}, {"resp", c.RESP}} {
		if a.addr == "" || isLoopback(a.addr) {
			continue
		}
		errs = append(errs, fieldError{a.name, fmt.Sprintf("%s is outside loopback and --security is disabled: anyone who reaches it can read and write every key. "+
			"Set --security required (or transitional) with --tls-cert, --tls-key and --tls-ca (see mnemo certs), or --insecure to serve it open", a.addr)})
	}
	return errs
}

// isLoopback reports whether a host:port binds only loopback: an IP of
// 127/8 or ::1, or localhost. An empty host binds every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true // reported as malformed by Validate already
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Setting describes one configuration key: its flag and config-file name,
// its type, default (as text), help, and the parser that checks and applies
// a value. Settings lists them for the CLI; range checks that span fields
// are Validate's.
type Setting struct {
	Name string
	// Type is the value's kind as --help shows it: string, int, float,
	// bool, duration (500ms, 3h), size (512, 64KiB, 1MiB) or strings (a
	// comma-separated list).
	Type    string
	Default string
	Usage   string
	apply   func(c *Config, v string) error
}

// Settings returns every node setting, in help order.
func Settings() []Setting {
	d := DefaultConfig()
	str := func(name, def, usage string, set func(c *Config, v string)) Setting {
		return Setting{name, "string", def, usage, func(c *Config, v string) error { set(c, v); return nil }}
	}
	num := func(name string, def int, usage string, set func(c *Config, v int)) Setting {
		return Setting{name, "int", strconv.Itoa(def), usage, func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not a whole number", v)
			}
			set(c, n)
			return nil
		}}
	}
	dur := func(name string, def time.Duration, usage string, set func(c *Config, v time.Duration)) Setting {
		return Setting{name, "duration", def.String(), usage, func(c *Config, v string) error {
			x, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not a duration (like 500ms, 10s, 3h)", v)
			}
			set(c, x)
			return nil
		}}
	}
	size := func(name string, def int64, usage string, set func(c *Config, v int64)) Setting {
		return Setting{name, "size", FormatSize(def), usage, func(c *Config, v string) error {
			x, err := ParseSize(v)
			if err != nil {
				return err
			}
			set(c, x)
			return nil
		}}
	}
	boolean := func(name string, def bool, usage string, set func(c *Config, v bool)) Setting {
		return Setting{name, "bool", strconv.FormatBool(def), usage, func(c *Config, v string) error {
			x, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			set(c, x)
			return nil
		}}
	}
	return []Setting{
		str("id", d.ID, "node id, stable across restarts", func(c *Config, v string) { c.ID = v }),
		str("data", "", "data directory (default ./data-<id>)", func(c *Config, v string) { c.Data = v }),
		str("zone", "", "failure zone (rack, AZ): replicas spread across zones", func(c *Config, v string) { c.Zone = v }),
		str("gossip", d.Gossip, "gossip (memberlist) bind address host:port", func(c *Config, v string) { c.Gossip = v }),
		str("rpc", d.RPC, "client and peer RPC address host:port", func(c *Config, v string) { c.RPC = v }),
		str("http", "", "admin HTTP address host:port (/metrics, /status, /healthz); empty: off", func(c *Config, v string) { c.HTTP = v }),
		str("resp", "", "Redis protocol address host:port; empty: off", func(c *Config, v string) { c.RESP = v }),
		{"join", "strings", "", "comma-separated gossip addresses of existing members (in a config file, also a list); empty: new cluster", func(c *Config, v string) error {
			c.Join = nil
			for _, j := range strings.Split(v, ",") {
				if j = strings.TrimSpace(j); j != "" {
					c.Join = append(c.Join, j)
				}
			}
			return nil
		}},
		num("partitions", d.Partitions, "partitions Q, a power of two, fixed at cluster creation", func(c *Config, v int) { c.Partitions = v }),
		num("segments", d.Segments, "anti-entropy segments per partition, fixed at creation", func(c *Config, v int) { c.Segments = v }),
		num("n", d.N, "replicas per key (default for requests)", func(c *Config, v int) { c.N = v }),
		num("r", d.R, "read quorum (default for requests)", func(c *Config, v int) { c.R = v }),
		num("w", d.W, "write quorum (default for requests)", func(c *Config, v int) { c.W = v }),
		{"sync", "string", d.Sync.String(), "durability: always (fsync before ack, survives kill -9), batch (fsync every sync-interval), none", func(c *Config, v string) error {
			m, err := store.ParseSyncMode(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not always, batch or none", v)
			}
			c.Sync = m
			return nil
		}},
		dur("sync-interval", d.SyncInterval, "fsync interval in batch mode", func(c *Config, v time.Duration) { c.SyncInterval = v }),
		dur("sync-min-gap", d.SyncMinGap, "in always mode, least time between two fsyncs; writes meanwhile share the next (0: fsync at once)", func(c *Config, v time.Duration) { c.SyncMinGap = v }),
		{"conflicts", "string", d.Conflicts.String(), "conflict mode: siblings (keep concurrent writes) or lww (last write wins)", func(c *Config, v string) error {
			switch strings.TrimSpace(v) {
			case "siblings":
				c.Conflicts = proto.ModeSiblings
			case "lww":
				c.Conflicts = proto.ModeLWW
			default:
				return fmt.Errorf("%q is not siblings or lww", v)
			}
			return nil
		}},
		dur("timeout", d.Timeout, "request timeout when the caller sets none", func(c *Config, v time.Duration) { c.Timeout = v }),
		size("max-key-size", int64(d.MaxKeySize), "largest key", func(c *Config, v int64) { c.MaxKeySize = int(v) }),
		size("max-value-size", int64(d.MaxValueSize), "largest value", func(c *Config, v int64) { c.MaxValueSize = int(v) }),
		boolean("read-repair", d.ReadRepair, "repair stale replicas after quorum reads", func(c *Config, v bool) { c.ReadRepair = v }),
		dur("read-repair-wait", d.ReadRepairWait, "how long a read waits for slow replicas to repair them", func(c *Config, v time.Duration) { c.ReadRepairWait = v }),
		size("cache-size", d.CacheSize, "Pebble block cache", func(c *Config, v int64) { c.CacheSize = v }),
		size("object-cache-size", d.ObjectCacheSize, "versions (not values) of recent keys kept in memory: overwrites, replica merges and digest reads skip Pebble (0: off)", func(c *Config, v int64) { c.ObjectCacheSize = v }),
		dur("transfer-interval", d.TransferInterval, "how often ownership transfer re-checks, besides ring changes", func(c *Config, v time.Duration) { c.TransferInterval = v }),
		size("transfer-rate", d.TransferRate, "ownership-transfer bandwidth per node, per second (0: unlimited)", func(c *Config, v int64) { c.TransferRate = v }),
		dur("auto-remove-after", d.AutoRemoveAfter, "remove a member dead this long (0: never; a transient failure moves no data)", func(c *Config, v time.Duration) { c.AutoRemoveAfter = v }),
		dur("tombstone-grace", d.TombstoneGrace, "keep delete tombstones this long; a node down longer rejoins empty", func(c *Config, v time.Duration) { c.TombstoneGrace = v }),
		boolean("hints", d.Hints, "hinted handoff: keep writes for dead replicas and replay them when they return", func(c *Config, v bool) { c.Hints = v }),
		dur("hint-window", d.HintWindow, "hints older than this expire (anti-entropy covers the rest)", func(c *Config, v time.Duration) { c.HintWindow = v }),
		num("hint-rate", d.HintRate, "hint replay rate, objects per second", func(c *Config, v int) { c.HintRate = v }),
		boolean("anti-entropy", d.AntiEntropy, "run Merkle anti-entropy", func(c *Config, v bool) { c.AntiEntropy = v }),
		dur("ae-interval", d.AEInterval, "exchange each partition with each replica this often", func(c *Config, v time.Duration) { c.AEInterval = v }),
		size("ae-rate", d.AERate, "anti-entropy bandwidth sent per node, per second (0: unlimited)", func(c *Config, v int64) { c.AERate = v }),
		{"ae-cpu", "float", strconv.FormatFloat(d.AECPU, 'g', -1, 64), "share of one CPU anti-entropy's work may take while clients are served (0: unbounded)", func(c *Config, v string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return fmt.Errorf("%q is not a number", v)
			}
			c.AECPU = f
			return nil
		}},
		str("stale-data", d.StaleData, "when away longer than tombstone-grace: refuse to start, rejoin-empty (data moved aside), or keep", func(c *Config, v string) { c.StaleData = v }),
		str("log-level", d.LogLevel, "debug, info, warn or error", func(c *Config, v string) { c.LogLevel = v }),
		str("log-format", d.LogFormat, "auto (console on a terminal, else JSON), json or console", func(c *Config, v string) { c.LogFormat = v }),
		str("cluster-name", "", "cluster name on the gossip wire: nodes ignore gossip from another name (every member must use the same)", func(c *Config, v string) { c.ClusterName = v }),
		str("gossip-profile", "", "failure-detector timings: lan, or local (loopback; default when all addresses are loopback)", func(c *Config, v string) { c.GossipProfile = v }),
		{"security", "string", d.Security.String(), "every port: disabled (plaintext), transitional (accept both, dial TLS; for a rolling upgrade) or required (TLS and encrypted gossip only)", func(c *Config, v string) error {
			m, err := security.ParseMode(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not disabled, transitional or required", v)
			}
			c.Security = m
			return nil
		}},
		boolean("insecure", d.Insecure, "allow security disabled on addresses outside loopback", func(c *Config, v bool) { c.Insecure = v }),
		str("tls-cert", "", "PEM certificate of this node, naming mnemo://node/<id> (mnemo certs writes one)", func(c *Config, v string) { c.TLSCert = v }),
		str("tls-key", "", "PEM private key of tls-cert", func(c *Config, v string) { c.TLSKey = v }),
		str("tls-ca", "", "PEM bundle of the CAs trusted for peers and clients (several during a CA rotation)", func(c *Config, v string) { c.TLSCA = v }),
		dur("tls-reload-interval", d.TLSReloadInterval, "how often the TLS files are checked for new content (SIGHUP reloads at once; 0: only on SIGHUP)", func(c *Config, v time.Duration) { c.TLSReloadInterval = v }),
	}
}

// ParseSettings builds a Config from the defaults and the given values
// (setting name -> text). Every unknown name and bad value is reported, one
// line each, and then Validate runs, so one start-up shows every mistake.
func ParseSettings(values map[string]string) (Config, error) {
	c := DefaultConfig()
	known := map[string]Setting{}
	for _, s := range Settings() {
		known[s.Name] = s
	}
	var errs []error
	failed := map[string]bool{}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s, ok := known[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown setting", name))
			continue
		}
		if err := s.apply(&c, values[name]); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", name, err))
			failed[name] = true
		}
	}
	if c.Data == "" && c.ID != "" {
		c.Data = "./data-" + c.ID
	}
	// Settings that failed to parse kept their defaults; checking those
	// would only confuse, so report the rest.
	for _, fe := range c.fieldErrors() {
		if !failed[fe.name] {
			errs = append(errs, fmt.Errorf("--%s: %s", fe.name, fe.msg))
		}
	}
	return c, errors.Join(errs...)
}

// ReadConfigFile reads a TOML config file whose top-level keys are the
// setting names, for ParseSettings. Values may be TOML strings ("5s",
// "64MiB", "always"), integers, floats or booleans; join may also be an
// array of strings. Tables are refused: the settings are flat. Errors name
// the file and line.
func ReadConfigFile(path string) (map[string]string, error) {
	var raw map[string]any
	md, err := toml.DecodeFile(path, &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	out := map[string]string{}
	var errs []error
	for _, key := range md.Keys() {
		if len(key) != 1 {
			continue // inside a table, reported with the table
		}
		name := key[0]
		v, err := settingText(raw[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", path, name, err))
			continue
		}
		out[name] = v
	}
	return out, errors.Join(errs...)
}

// settingText turns a TOML value into the text a setting parses.
func settingText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok || strings.Contains(s, ",") {
				return "", fmt.Errorf("a list may hold only strings without commas, item %d is %v", i, e)
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		return "", errors.New("is a table; settings are flat name = value pairs")
	}
	return "", fmt.Errorf("has an unsupported type %T", v)
}

// ParseSize parses a byte size: a number with an optional unit B, KiB, MiB,
// GiB (or K, M, G, KB, MB, GB, all powers of 1024).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (like 512, 64KiB, 1MiB)", s)
	}
	mult := map[string]int64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}[strings.ToLower(strings.TrimSpace(t[i:]))]
	if mult == 0 {
		return 0, fmt.Errorf("%q has an unknown unit (use B, KiB, MiB, GiB)", s)
	}
	return n * mult, nil
}

// FormatSize prints a byte size the way ParseSize reads it.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}
