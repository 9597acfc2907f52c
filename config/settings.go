package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/security"
	"github.com/mnemo-kv/mnemo/store"
)

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
	d := Default()
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
	float := func(name string, def float64, usage string, set func(c *Config, v float64)) Setting {
		return Setting{name, "float", strconv.FormatFloat(def, 'g', -1, 64), usage, func(c *Config, v string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return fmt.Errorf("%q is not a number", v)
			}
			set(c, f)
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
		float("read-repair-chance", d.ReadRepairChance, "share of reads (0 to 1) that ask every replica, not R, so all are compared and repaired over time (1: every read)", func(c *Config, v float64) { c.ReadRepairChance = v }),
		dur("read-retry-after", d.ReadRetryAfter, "a read that asked R replicas asks one more if they have not answered by then (0: off)", func(c *Config, v time.Duration) { c.ReadRetryAfter = v }),
		size("cache-size", d.CacheSize, "Pebble block cache", func(c *Config, v int64) { c.CacheSize = v }),
		size("object-cache-size", d.ObjectCacheSize, "versions (not values) of recent keys kept in memory: overwrites, replica merges and digest reads skip Pebble (0: off)", func(c *Config, v int64) { c.ObjectCacheSize = v }),
		size("gc-headroom", d.GCHeadroom, "Go heap growth allowed past the live heap before a collection, when more than the live size (GOGC in the environment wins; 0: Go's default)", func(c *Config, v int64) { c.GCHeadroom = v }),
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
		float("ae-cpu", d.AECPU, "share of one CPU anti-entropy's work may take while clients are served (0: unbounded)", func(c *Config, v float64) { c.AECPU = v }),
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
		str("gossip-key-file", "", "file of gossip keys, one base64 32-byte key per line, the first the primary (needed unless --security disabled, when gossip stays plaintext; mnemo never writes it)", func(c *Config, v string) { c.GossipKeyFile = v }),
		boolean("insecure", d.Insecure, "allow security disabled on addresses outside loopback, and the admin and RESP ports there without a token or users", func(c *Config, v bool) { c.Insecure = v }),
		str("resp-users", "", "RESP users file (TOML; hashes from `mnemo users hash`): every RESP connection must AUTH; empty: open (loopback only)", func(c *Config, v string) { c.RESPUsers = v }),
		str("resp-client-certs", d.RESPClientCerts, "RESP over TLS: yes (a client certificate is required), optional (verified when given) or no", func(c *Config, v string) { c.RESPClientCerts = strings.TrimSpace(v) }),
		str("admin-token-file", "", "file holding the admin HTTP bearer token (every route but /healthz needs it); empty: open (loopback only)", func(c *Config, v string) { c.AdminTokenFile = v }),
		str("metrics-token-file", "", "file holding a bearer token that opens only /metrics", func(c *Config, v string) { c.MetricsTokenFile = v }),
		str("tls-cert", "", "PEM certificate of this node, naming mnemo://node/<id> (mnemo certs writes one)", func(c *Config, v string) { c.TLSCert = v }),
		str("tls-key", "", "PEM private key of tls-cert", func(c *Config, v string) { c.TLSKey = v }),
		str("tls-ca", "", "PEM bundle of the CAs trusted for peers and clients (several during a CA rotation)", func(c *Config, v string) { c.TLSCA = v }),
		dur("tls-reload-interval", d.TLSReloadInterval, "how often the TLS files are checked for new content (SIGHUP reloads at once; 0: only on SIGHUP)", func(c *Config, v time.Duration) { c.TLSReloadInterval = v }),
	}
}

// Parse builds a Config from the defaults and the given values
// (setting name -> text). Every unknown name and bad value is reported, one
// line each, and then Validate runs, so one start-up shows every mistake.
func Parse(values map[string]string) (Config, error) {
	c := Default()
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

// ReadFile reads a TOML config file whose top-level keys are the
// setting names, for Parse. Values may be TOML strings ("5s",
// "64MiB", "always"), integers, floats or booleans; join may also be an
// array of strings. Tables are refused: the settings are flat. Errors name
// the file and line.
func ReadFile(path string) (map[string]string, error) {
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
