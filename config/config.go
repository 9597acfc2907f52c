package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mnemo-kv/mnemo/antientropy"
	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/security"
	"github.com/mnemo-kv/mnemo/ring"
	"github.com/mnemo-kv/mnemo/store"
)

// Config is everything a node is started with. Every field is one setting
// of `mnemo node` (the flag of the same name, or the key of the same name in
// a config file); Default gives the defaults below.
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
	// ReadRepairChance is the share of quorum reads, in [0, 1], that ask
	// every replica of the key although R would do, so that with read
	// repair on every replica is compared now and then (Cassandra's old
	// read_repair_chance). The others ask R replicas, unless one of the
	// key's replicas is suspect (a stand-in, owed hints, or rejoined
	// lately): then every one. 1 asks every replica always; 0 only when
	// one is suspect. Default 0.1.
	ReadRepairChance float64
	// ReadRetryAfter is how long a read that asked R replicas waits for
	// them before it asks one more (a speculative retry; a replica that
	// answers with an error is replaced at once). 0 turns it off. Default
	// 5ms: a GET's p50 is 0.3 ms idle and 1-1.5 ms under load, and its
	// p99 at light load about 2.5 ms (docs/performance.md).
	ReadRetryAfter time.Duration
	// CacheSize is Pebble's block cache in bytes. Default 32 MiB.
	CacheSize int64
	// ObjectCacheSize is the budget in bytes of the store's cache of the
	// versions of recent keys (store.Options.ObjectCacheSize; 0 turns it
	// off). Default 16 MiB.
	ObjectCacheSize int64
	// GCHeadroom is how much the Go heap may grow past what is live before
	// the next collection, when that is more than Go's default of the live
	// size again (internal/gctune; the mnemo binary applies it unless the
	// GOGC environment variable is set; 0: Go's default). Default 48 MiB.
	GCHeadroom int64
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
	// It also lets the admin port outside loopback run without a token,
	// and the RESP port outside loopback (or with Security on) without
	// users.
	Insecure bool
	// GossipKeyFile is the operator's file of gossip keys (one base64
	// 32-byte key per line, the first the primary; see gossip.ParseKeys),
	// read once at start. mnemo never writes it: after a runtime rotation
	// (mnemo keyring) the operator updates it. Required with Security
	// transitional or required; with disabled it is read and checked, and
	// gossip stays plaintext (so the file can be in place before the
	// rolling enable).
	GossipKeyFile string
	// RESPUsers is the RESP port's users file (internal/acl: users,
	// argon2id password hashes, rules, key patterns); with it every RESP
	// connection must authenticate. Empty (the default): the port takes
	// commands from anyone, which is refused outside loopback and with
	// Security on, unless Insecure.
	RESPUsers string
	// RESPClientCerts says whether RESP over TLS asks for a client
	// certificate: yes (required), optional (verified when given; the
	// default) or no. A verified one naming mnemo://client/<name>
	// authenticates as user <name>.
	RESPClientCerts string
	// AdminTokenFile holds the admin port's bearer token (at least 16
	// bytes; every route but /healthz needs it or a client certificate).
	// Empty: the admin port is open, which is refused outside loopback
	// unless Insecure.
	AdminTokenFile string
	// MetricsTokenFile holds a second token that opens only /metrics, for
	// a scraper. Empty: none.
	MetricsTokenFile string
	// TLSCert, TLSKey and TLSCA are PEM files: the node's certificate
	// (naming it mnemo://node/<id>), its key, and the CA bundle trusted
	// for peers and clients (one or several CAs, so a CA rotation can
	// trust both). Needed unless Security is disabled.
	TLSCert, TLSKey, TLSCA string
	// TLSReloadInterval is how often the TLS files' content is checked
	// for a change (SIGHUP reloads at once); 0: only on SIGHUP. Default 10s.
	TLSReloadInterval time.Duration
}

// RESPClientCerts values.
const (
	ClientCertsYes      = "yes"
	ClientCertsOptional = "optional"
	ClientCertsNo       = "no"
)

// IsLoopback reports whether a host:port binds only loopback: localhost
// or a loopback IP. An empty host (every interface) is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Default returns the defaults documented on Config; ID is the host name.
func Default() Config {
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

		ReadRepairChance: 0.1,
		ReadRetryAfter:   5 * time.Millisecond,

		ObjectCacheSize: 16 << 20,
		GCHeadroom:      48 << 20,

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

		RESPClientCerts:   ClientCertsOptional,
		TLSReloadInterval: 10 * time.Second,
	}
}

// Stale-data policies (StaleData, --stale-data).
const (
	StaleRefuse      = "refuse"
	StaleRejoinEmpty = "rejoin-empty"
	StaleKeep        = "keep"
)

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
	if !(c.ReadRepairChance >= 0 && c.ReadRepairChance <= 1) {
		bad("read-repair-chance", "%v must be between 0 and 1 (the share of reads that ask every replica)", c.ReadRepairChance)
	}
	if c.ReadRetryAfter < 0 {
		bad("read-retry-after", "%v must not be negative (0: off)", c.ReadRetryAfter)
	}
	if c.CacheSize < 16<<20 {
		// Pebble charges its memtables (4 MiB, and those being flushed)
		// to the block cache: below this it would hold few blocks or none.
		bad("cache-size", "%d must be at least 16MiB (Pebble counts its memtables against it)", c.CacheSize)
	}
	if c.ObjectCacheSize < 0 {
		bad("object-cache-size", "%d must not be negative (0: off)", c.ObjectCacheSize)
	}
	if c.GCHeadroom < 0 {
		bad("gc-headroom", "%d must not be negative (0: Go's default GOGC)", c.GCHeadroom)
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
	if c.Security != security.Disabled && c.GossipKeyFile == "" {
		bad("gossip-key-file", "needed with --security %s: a file of base64 32-byte keys, one per line (make one with: mnemo keyring generate > FILE)", c.Security)
	}
	if len(c.ClusterName) > 255 {
		bad("cluster-name", "is %d bytes, limit 255", len(c.ClusterName))
	}
	if !slices.Contains([]string{"", "lan", "local"}, c.GossipProfile) {
		bad("gossip-profile", "%q must be lan or local", c.GossipProfile)
	}
	if !slices.Contains([]string{ClientCertsYes, ClientCertsOptional, ClientCertsNo}, c.RESPClientCerts) {
		bad("resp-client-certs", "%q must be yes, optional or no", c.RESPClientCerts)
	}
	// Nothing outside loopback takes a command from anyone, unless the
	// operator says so (Redis' protected mode, for every port).
	if c.HTTP != "" && !IsLoopback(c.HTTP) && c.AdminTokenFile == "" && c.MetricsTokenFile == "" && !c.Insecure {
		bad("admin-token-file", "must be set: --http %s is outside loopback and would serve /status and /metrics to anyone (or give --insecure)", c.HTTP)
	}
	if c.RESP != "" && c.RESPUsers == "" && !c.Insecure {
		switch {
		case !IsLoopback(c.RESP):
			bad("resp-users", "must be set: --resp %s is outside loopback and would take commands from anyone (or give --insecure)", c.RESP)
		case c.Security != security.Disabled:
			bad("resp-users", "must be set with --security %s: without users the Redis port takes commands from anyone (or give --insecure)", c.Security)
		}
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
		if _, _, err := net.SplitHostPort(a.addr); a.addr == "" || err != nil || IsLoopback(a.addr) {
			continue // empty (off), or malformed and reported as such
		}
		errs = append(errs, fieldError{a.name, fmt.Sprintf("%s is outside loopback and --security is disabled: anyone who reaches it can read and write every key. "+
			"Set --security required (or transitional) with --tls-cert, --tls-key and --tls-ca (see mnemo certs), or --insecure to serve it open", a.addr)})
	}
	return errs
}
