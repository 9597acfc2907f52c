package gossip

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/internal/security"
)

// ErrMetaTooLarge is returned (wrapped) by Config.Validate, New and
// UpdateMeta when the user meta exceeds MaxMetaSize.
var ErrMetaTooLarge = errors.New("gossip: meta too large")

// Config configures a Gossip. Start from DefaultConfig or DefaultLocalConfig
// and set NodeID, BindAddr and the rest; the zero Config is not valid.
type Config struct {
	// NodeID names this node; unique in the cluster, stable across restarts
	// (a restart under the same id is a rejoin), 1 to 255 bytes. Required.
	NodeID string

	// BindAddr is the IP:port memberlist listens on, for both TCP and UDP.
	// An empty host means 0.0.0.0 (then a private IP of the machine is
	// advertised). Port 0 picks a free port; LocalAddr reports it.
	// Default "0.0.0.0:7946".
	BindAddr string

	// AdvertiseAddr is the IP:port peers should use to reach this node, when
	// it differs from BindAddr (NAT, containers). Empty: derived from
	// BindAddr. Port 0: the bound port. Optional.
	AdvertiseAddr string

	// Join lists gossip addresses (host:port, or name/host:port) of members
	// of an existing cluster. Empty starts a new cluster. The join runs in
	// the background and is retried every JoinRetry until it reaches a peer,
	// so nodes may start in any order and the list may name dead or
	// not-yet-started nodes. This node's own address is skipped, so every
	// node can be given the same list.
	Join []string

	// Meta is small user meta gossiped with this node's liveness (the node
	// puts its RPC address here), at most MaxMetaSize bytes. Change it with
	// UpdateMeta.
	Meta []byte

	// State is the replicated state gossip carries (the ring-state CRDT).
	// Nil carries no state: liveness only.
	State StateDelegate

	// Events receives liveness changes. Nil: no events (Members still
	// works).
	Events Events

	// Logger receives gossip's own log lines and memberlist's, the latter at
	// the level memberlist tagged them with (DEBUG, INFO, WARN, ERR) and
	// with component=memberlist. The zero Logger discards everything.
	Logger zerolog.Logger

	// ProbeInterval is the time between two failure-detector probes of
	// random members. Lower detects deaths sooner, at more traffic.
	// Default 1 s.
	ProbeInterval time.Duration

	// ProbeTimeout is how long a probe waits for an ack before asking other
	// members to probe indirectly; the 99th percentile of the network's
	// round-trip time. Must be less than ProbeInterval. Default 500 ms.
	ProbeTimeout time.Duration

	// SuspicionMult sets how long a member that failed a probe stays
	// suspect before it is declared dead: SuspicionMult * max(1, log10(N)) *
	// ProbeInterval when enough peers confirm the suspicion (N members).
	// Higher gives a slow but live member more time to refute. Default 4.
	SuspicionMult int

	// SuspicionMaxTimeoutMult bounds the suspicion time when peers do not
	// confirm it: at most SuspicionMaxTimeoutMult times the time above.
	// Default 6.
	SuspicionMaxTimeoutMult int

	// GossipInterval is the time between two rounds of gossip to a few
	// random members; it carries liveness changes and state broadcasts.
	// Default 200 ms.
	GossipInterval time.Duration

	// PushPullInterval is the time between two full-state exchanges (all
	// liveness plus LocalState, over TCP) with one random member. It repairs
	// lost broadcasts, so it bounds how stale the ring state can stay.
	// Memberlist's LAN default is 30 s; mnemo uses 15 s because the ring
	// state is small and a missed ring change matters. Default 15 s.
	PushPullInterval time.Duration

	// TCPTimeout bounds dialing and each read and write of a TCP exchange
	// (push/pull, join, large state sends). Default 10 s.
	TCPTimeout time.Duration

	// GossipToTheDeadTime is how long gossip keeps sending to a member after
	// it died, giving a paused or partitioned member the chance to hear of
	// its death and refute it. Default 30 s.
	GossipToTheDeadTime time.Duration

	// DeadNodeReclaimTime is how long a member must have been dead before a
	// process under the same NodeID but a different address may take its
	// place (a node restarted with a new IP). A restart on the same address
	// does not wait for it. Must be positive: memberlist's 0 means never,
	// and a moved node would then be refused until the dead entry is
	// forgotten. Default 5 s.
	DeadNodeReclaimTime time.Duration

	// ReconnectInterval is how often this node tries to reach members it
	// holds dead (and seeds nobody live answers on), which is what ends a
	// split brain once a partition heals. Default 10 s.
	ReconnectInterval time.Duration

	// ReconnectTimeout is how long a dead member is retried. Default 72 h.
	ReconnectTimeout time.Duration

	// JoinRetry is the time between two attempts to join the cluster named
	// by Join, retried until one reaches a peer or Close. Default 1 s.
	JoinRetry time.Duration

	// ClusterName, if set, is memberlist's Label: it prefixes every packet
	// and stream, and a node drops those that carry another name (at most
	// memberlist.LabelMaxSize bytes). Two clusters on one network, or the
	// many test clusters of one machine, all with node ids n1, n2, n3,
	// then cannot merge when one of them dials an address that now
	// belongs to a node of the other. Every member must use the same.
	ClusterName string

	// Encryption is how this node encrypts gossip (memberlist's keyring,
	// AES-256-GCM, with ClusterName as the authenticated label):
	//   - security.Disabled: no keyring; plaintext only. Keys must be empty.
	//   - security.Transitional: reads encrypted and plaintext gossip
	//     (GossipVerifyIncoming false) and sends plaintext until
	//     EnableEncryption installs Keys, then sends encrypted
	//     (GossipVerifyOutgoing true). The caller enables it once every
	//     member can read encrypted gossip; a join refused because the
	//     peer already encrypts enables it too.
	//   - security.Required: Keys installed from the start; sends and
	//     reads encrypted gossip only.
	// Every member reading a pair of these can read the other, except a
	// disabled node and a node that sends encrypted: see doc.go.
	// Default Disabled.
	Encryption security.Mode

	// Keys are the gossip keys, each KeySize bytes, the first the primary
	// (the one gossip encrypts with; the others only decrypt). Required
	// unless Encryption is Disabled. Change them at runtime with
	// InstallKey, UseKey and RemoveKey.
	Keys [][]byte

	// wrapTransport, if set, wraps the network transport; tests use it to
	// drop traffic (a partition, or a paused process).
	wrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
}

// DefaultConfig returns a configuration for a LAN, based on memberlist's
// DefaultLANConfig. NodeID must still be set.
//
// With these values a dead member of a small cluster is detected in about
// 5-10 s (a probe round, then 4 s of suspicion, longer without
// confirmations), a state broadcast reaches every node in well under a
// second, and push/pull repairs anything lost within 15 s.
func DefaultConfig() Config {
	return Config{
		BindAddr:                "0.0.0.0:7946",
		ProbeInterval:           time.Second,
		ProbeTimeout:            500 * time.Millisecond,
		SuspicionMult:           4,
		SuspicionMaxTimeoutMult: 6,
		GossipInterval:          200 * time.Millisecond,
		PushPullInterval:        15 * time.Second,
		TCPTimeout:              10 * time.Second,
		GossipToTheDeadTime:     30 * time.Second,
		DeadNodeReclaimTime:     5 * time.Second,
		JoinRetry:               time.Second,
		ReconnectInterval:       10 * time.Second,
		ReconnectTimeout:        72 * time.Hour,
	}
}

// DefaultLocalConfig returns a configuration for nodes on one machine
// (loopback; tests and demos), derived from DefaultConfig with faster
// timers: a dead member is detected within about 2-3 s (a probe every
// 400 ms, then 1.6 s of suspicion, at most 3.2 s when peers do not confirm
// it), and push/pull runs every 2 s. It binds to 127.0.0.1 on a free port.
func DefaultLocalConfig() Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1:0"
	c.ProbeInterval = 400 * time.Millisecond
	// Loopback round trips take microseconds, but a process under -race on
	// a loaded machine can stall for tens of milliseconds, and every false
	// suspicion costs a refute: memberlist's own local value.
	c.ProbeTimeout = 200 * time.Millisecond
	c.SuspicionMult = 4
	c.SuspicionMaxTimeoutMult = 2
	c.GossipInterval = 100 * time.Millisecond
	c.PushPullInterval = 2 * time.Second
	c.TCPTimeout = 2 * time.Second
	c.GossipToTheDeadTime = 15 * time.Second
	c.DeadNodeReclaimTime = 500 * time.Millisecond
	c.JoinRetry = time.Second
	c.ReconnectInterval = 2 * time.Second
	return c
}

// Validate reports every bad field at once, as one error per field joined
// with errors.Join. A too-large Meta wraps ErrMetaTooLarge.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("gossip: config: %s: %s", field, fmt.Sprintf(format, args...)))
	}

	if len(c.ClusterName) > memberlist.LabelMaxSize {
		bad("ClusterName", "is %d bytes, limit %d", len(c.ClusterName), memberlist.LabelMaxSize)
	}
	switch {
	case c.NodeID == "":
		bad("NodeID", "must not be empty")
	case len(c.NodeID) > maxNodeIDLen:
		bad("NodeID", "is %d bytes, limit %d", len(c.NodeID), maxNodeIDLen)
	}
	if _, _, err := splitIPPort(c.BindAddr, false); err != nil {
		bad("BindAddr", "%v", err)
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := splitIPPort(c.AdvertiseAddr, true); err != nil {
			bad("AdvertiseAddr", "%v", err)
		}
	}
	for i, j := range c.Join {
		if j == "" {
			bad(fmt.Sprintf("Join[%d]", i), "must not be empty")
		}
	}
	switch {
	case c.Encryption > security.Required:
		bad("Encryption", "unknown mode %d", c.Encryption)
	case c.Encryption == security.Disabled && len(c.Keys) > 0:
		bad("Keys", "given, but Encryption is disabled")
	case c.Encryption != security.Disabled && len(c.Keys) == 0:
		bad("Keys", "Encryption %s needs at least one key", c.Encryption)
	}
	for i, k := range c.Keys {
		if len(k) != KeySize {
			bad(fmt.Sprintf("Keys[%d]", i), "is %d bytes, want %d (AES-256)", len(k), KeySize)
		}
	}
	if err := checkMetaSize(len(c.Meta)); err != nil {
		errs = append(errs, fmt.Errorf("gossip: config: Meta: %w", err))
	}

	positive := func(field string, d time.Duration) {
		if d <= 0 {
			bad(field, "must be positive, got %v", d)
		}
	}
	positive("ProbeInterval", c.ProbeInterval)
	positive("ProbeTimeout", c.ProbeTimeout)
	if c.ProbeTimeout > 0 && c.ProbeInterval > 0 && c.ProbeTimeout >= c.ProbeInterval {
		bad("ProbeTimeout", "%v must be less than ProbeInterval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.SuspicionMult < 1 {
		bad("SuspicionMult", "must be at least 1, got %d", c.SuspicionMult)
	}
	if c.SuspicionMaxTimeoutMult < 1 {
		bad("SuspicionMaxTimeoutMult", "must be at least 1, got %d", c.SuspicionMaxTimeoutMult)
	}
	positive("GossipInterval", c.GossipInterval)
	positive("PushPullInterval", c.PushPullInterval)
	positive("TCPTimeout", c.TCPTimeout)
	positive("GossipToTheDeadTime", c.GossipToTheDeadTime)
	positive("DeadNodeReclaimTime", c.DeadNodeReclaimTime)
	positive("JoinRetry", c.JoinRetry)
	positive("ReconnectInterval", c.ReconnectInterval)
	positive("ReconnectTimeout", c.ReconnectTimeout)
	return errors.Join(errs...)
}

// checkMetaSize returns an error wrapping ErrMetaTooLarge if n bytes of user
// meta do not fit.
func checkMetaSize(n int) error {
	if n > MaxMetaSize {
		return fmt.Errorf("%w: %d bytes, limit %d (memberlist's %d-byte node meta less gossip's %d-byte envelope)",
			ErrMetaTooLarge, n, MaxMetaSize, memberlist.MetaMaxSize, metaHeaderLen)
	}
	return nil
}

// splitIPPort parses "IP:port" as memberlist needs it: the host must be a
// literal IP (memberlist binds to IPs, not names) or, unless advertise,
// empty for all interfaces.
func splitIPPort(addr string, advertise bool) (ip string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("want IP:port, got %q", addr)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	if host == "" {
		if advertise {
			return "", 0, fmt.Errorf("no IP in %q", addr)
		}
		host = "0.0.0.0"
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("%q is not an IP address (memberlist binds to IPs, not names)", host)
	}
	return host, port, nil
}
