package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mnemo-kv/mnemo/internal/proto"
	"github.com/mnemo-kv/mnemo/internal/security"
	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
)

// Peer mutual TLS on the RPC port (issue 13).
//
// With --security transitional or required, the node loads its TLS files
// into a security.Reloader (reloaded on SIGHUP, see ReloadTLS, and when
// their content changes) and:
//
//   - serves RPC through a security.Wrap listener: TLS 1.3 with a required
//     client certificate, plus plaintext while transitional;
//   - accepts a node certificate (mnemo://node/<id>) only if <id> is a ring
//     member whose advertised RPC host is the connection's remote IP
//     (checkPeer), and a client certificate (mnemo://client/<name>) for the
//     client kinds only (authorize);
//   - dials each peer with TLS when its own mode and the mode the peer
//     advertises in the ring say so (security.Mode.DialsTLS), and accepts
//     the peer only if its certificate names the node id the ring puts at
//     the dialed address (dialTLS). So a valid certificate of node B used
//     at node C's address is refused, in both directions.

// tlsMetrics are the connection counters of the node's ports.
type tlsMetrics struct {
	plaintext *prometheus.CounterVec
	refused   *prometheus.CounterVec
}

func newTLSMetrics(reg *prometheus.Registry) tlsMetrics {
	m := tlsMetrics{
		plaintext: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mnemo_plaintext_connections_total",
			Help: "Plaintext connections accepted, by port: when it stops growing on every node, --security required is safe.",
		}, []string{"port"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mnemo_tls_refused_connections_total",
			Help: "Connections refused by port: plaintext to a required port, or a failed TLS handshake (bad or unknown certificate, wrong identity).",
		}, []string{"port"}),
	}
	reg.MustRegister(m.plaintext, m.refused)
	return m
}

// startTLS loads the TLS files when security is on. The caller closes
// n.tls.
func (n *Node) startTLS() error {
	n.tlsm = newTLSMetrics(n.metrics.reg)
	if n.cfg.Security == security.Disabled {
		return nil
	}
	r, err := security.NewReloader(security.Files{Cert: n.cfg.TLSCert, Key: n.cfg.TLSKey, CA: n.cfg.TLSCA}, security.ReloaderConfig{
		Interval: n.cfg.TLSReloadInterval,
		Logger:   n.log,
		Check:    n.checkOwnCert,
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.tls = r
	for _, c := range r.Collectors() {
		n.metrics.reg.MustRegister(c)
	}
	m := r.Current()
	n.log.Info().Str("security", n.cfg.Security.String()).Str("identity", m.Identity.String()).
		Time("cert_not_after", m.NotAfter).Msg("tls on")
	return nil
}

// checkOwnCert refuses material whose certificate does not name this node:
// a node must never present another node's identity.
func (n *Node) checkOwnCert(m *security.Material) error {
	want := security.Identity{Kind: security.NodeIdentity, Name: n.cfg.ID}
	if m.Identity != want {
		return fmt.Errorf("node: --tls-cert %s names %q, not this node's %s", n.cfg.TLSCert, m.Identity.String(), want)
	}
	return nil
}

// ReloadTLS reloads the TLS files now (the node command calls it on
// SIGHUP). A file that does not load is logged and the old material kept;
// the error says why. Without TLS it does nothing.
func (n *Node) ReloadTLS() error {
	if n.tls == nil {
		return nil
	}
	_, err := n.tls.Reload()
	return err
}

// SecureListener wraps a listener of the node's port (named for the
// metrics: "rpc", "resp", "http") in the node's security mode, with
// clientAuth asked of its clients. With security disabled it only counts
// connections as plaintext.
func (n *Node) SecureListener(ln net.Listener, port string, clientAuth security.ClientAuth) net.Listener {
	lc := security.ListenerConfig{
		Mode:      n.cfg.Security,
		Plaintext: n.tlsm.plaintext.WithLabelValues(port),
		Refused:   n.tlsm.refused.WithLabelValues(port),
	}
	if n.tls != nil {
		opts := security.ServerOptions{ClientAuth: clientAuth}
		if port == "rpc" {
			opts.Check = n.checkPeer
		}
		lc.TLS = n.tls.ServerConfig(opts)
	}
	return security.Wrap(ln, lc)
}

// checkPeer vets the verified certificate of a connection to the RPC
// port: a node identity must be a ring member advertising the remote IP
// as its RPC host. Runs in the TLS handshake.
func (n *Node) checkPeer(remote net.Addr, id security.Identity) error {
	if id.Kind != security.NodeIdentity {
		return nil // client kinds only: see authorize
	}
	err := n.memberAt(remote, ring.NodeID(id.Name))
	if err != nil {
		n.log.Warn().Err(err).Str("remote", fmt.Sprint(remote)).Str("identity", id.String()).Msg("peer certificate refused")
	}
	return err
}

// memberAt checks that id is a ring member whose RPC address's host is
// remote's IP.
func (n *Node) memberAt(remote net.Addr, id ring.NodeID) error {
	ta, ok := remote.(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("node: peer address %v is not TCP", remote)
	}
	m, ok := n.view.Load().members[id]
	if !ok || m.Status == ring.Removed {
		return fmt.Errorf("node: certificate of %s, which is not a ring member", id)
	}
	host, _, err := net.SplitHostPort(m.RPCAddr)
	if err != nil {
		return fmt.Errorf("node: certificate of %s, whose RPC address %q is malformed", id, m.RPCAddr)
	}
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		cancel()
		if err != nil {
			return fmt.Errorf("node: certificate of %s, whose RPC host %q does not resolve: %w", id, host, err)
		}
		ips = ips[:0]
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	for _, ip := range ips {
		if ip.Equal(ta.IP) && !ip.IsUnspecified() {
			return nil
		}
	}
	return fmt.Errorf("node: certificate of %s from %s, but %s's RPC address is %s", id, ta.IP, id, m.RPCAddr)
}

// clientKinds are the requests a client certificate may make: the SDK's
// and the CLI's. Peer kinds (replica reads and writes, forwarded puts,
// hints, anti-entropy, transfers, node info) need a node certificate.
var clientKinds = map[wire.Kind]bool{
	proto.KindPing: true, proto.KindGet: true, proto.KindPut: true, proto.KindStatus: true,
	proto.KindOwnershipEvents: true, proto.KindLeave: true, proto.KindRemove: true,
	// The cluster-wide keyring command, not KindKeyringLocal: only a node
	// fans a keyring step out to its peers.
	proto.KindKeyring: true,
}

// authorize is the RPC server's per-connection check (after the
// handshake): a node certificate may call every kind, a client one the
// client kinds. A plaintext connection, accepted only when not required,
// is not limited: transitional is the upgrade's open step.
func (n *Node) authorize(nc net.Conn) (func(wire.Kind) bool, error) {
	if _, isTLS := security.ConnectionState(nc); !isTLS {
		if n.cfg.Security == security.Required {
			return nil, errors.New("node: plaintext connection to a required port")
		}
		return nil, nil
	}
	id, ok := security.PeerIdentity(nc)
	if !ok {
		return nil, errors.New("node: TLS peer without a mnemo identity")
	}
	if id.Kind == security.ClientIdentity {
		return func(k wire.Kind) bool { return clientKinds[k] }, nil
	}
	return nil, nil
}

// dialTLS is the pool's per-address dial decision: TLS when this node's
// mode and the peer's advertised one say so, expecting the certificate of
// the member the ring puts at addr.
func (n *Node) dialTLS(addr string) (*tls.Config, error) {
	if n.tls == nil {
		return nil, nil
	}
	var peer *ring.Member
	for _, m := range n.view.Load().members {
		if m.RPCAddr == addr && m.Status != ring.Removed {
			peer = &m
			break
		}
	}
	if peer == nil {
		if n.cfg.Security == security.Required {
			return nil, fmt.Errorf("node: no ring member advertises RPC address %s, so no identity to expect there", addr)
		}
		return nil, nil
	}
	if !n.cfg.Security.DialsTLS(security.Mode(peer.Security)) {
		return nil, nil
	}
	return n.tls.ClientConfig(security.Identity{Kind: security.NodeIdentity, Name: string(peer.ID)}), nil
}

// dialFrom is the IP a node dials its peers from: the one its RPC port is
// bound to, which it advertises and peers check its certificate against
// (on a host with several addresses the system might pick another). Nil
// when bound to every interface.
func dialFrom(rpc net.Addr) net.IP {
	ta, ok := rpc.(*net.TCPAddr)
	if !ok || ta.IP == nil || ta.IP.IsUnspecified() {
		return nil
	}
	return ta.IP
}

// callerNode is the node id a request's connection is authenticated as:
// the mnemo://node/<id> of its verified certificate, and false on a
// plaintext connection or a client certificate.
func callerNode(ctx context.Context) (ring.NodeID, bool) {
	c := wire.ConnOf(ctx)
	if c == nil {
		return "", false
	}
	id, ok := security.PeerIdentity(c)
	if !ok || id.Kind != security.NodeIdentity {
		return "", false
	}
	return ring.NodeID(id.Name), true
}

// verifiedIdentity returns the mnemo identity of a connection's client
// certificate. A certificate is only there once the handshake has verified
// it against the CA bundle (a *security.Conn after its first Read), so any
// identity found is one the cluster's CA vouches for.
func verifiedIdentity(nc net.Conn) (security.Identity, bool) {
	sc, ok := nc.(*security.Conn)
	if !ok {
		return security.Identity{}, false
	}
	cs, ok := sc.ConnectionState()
	if !ok || !cs.HandshakeComplete || len(cs.PeerCertificates) == 0 {
		return security.Identity{}, false
	}
	id, err := security.IdentityOf(cs.PeerCertificates[0])
	return id, err == nil
}
