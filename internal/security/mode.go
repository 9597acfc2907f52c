// Package security holds what every mnemo port shares to be locked: the
// one switch (Mode) that says whether a port speaks plaintext, TLS or both.
//
// One switch for every port, as Cassandra's internode_encryption and Nomad's
// rpc_upgrade_mode do for theirs: an operator turns a live open cluster into
// a locked one by two rolling restarts, disabled -> transitional on every
// node, then transitional -> required on every node, and never has a node
// that cannot talk to another.
//
//   - disabled: plaintext only (gossip unencrypted, RPC, RESP and admin HTTP
//     without TLS). Allowed outside loopback only with --insecure.
//   - transitional: accepts TLS and plaintext, dials TLS to members that
//     advertise transitional or required (and plaintext to those that still
//     advertise disabled), reads plaintext and encrypted gossip, and
//     gossips encrypted once no ring member advertises disabled (or as
//     soon as a member sends it gossip encrypted with its key; see package
//     gossip). A metric counts plaintext connections accepted, so the
//     operator knows when required is safe.
//   - required: TLS only, gossip encrypted only.
//
// Each node advertises its mode in its ring entry (ring.Member.Security), so
// its peers know how to dial it during a rolling upgrade.
//
// The rest of the package is the TLS every port shares:
//
//   - Identities (identity.go): a node's certificate names it with the URI
//     SAN mnemo://node/<node-id>, a client's with mnemo://client/<name>;
//     IdentityOf reads the one such SAN a certificate may hold.
//   - Certificates (certs.go): CA and CA.Issue make ECDSA P-256 CAs and
//     node or client certificates; `mnemo certs` and the tests use them.
//   - Material and Reloader (tls.go): the certificate, key and CA bundle
//     of a node, replaced atomically on Reload (SIGHUP) or when the files'
//     content changes; a bad new file is logged and the old one kept. The
//     tls.Configs it makes (TLS 1.3 at least) read the current material at
//     each handshake and verify peers' chains themselves, against the
//     current bundle (which may hold several CAs), then their identity:
//     host names are not checked, the node id is.
//   - The listener (listen.go): Wrap makes any net.Listener speak a Mode,
//     sniffing the first byte of each connection on its first Read, so
//     servers' accept loops need no change. Plaintext connections accepted
//     are counted, so an operator knows when Required is safe.
//
// The caller decides what an identity may do: the node checks that a node
// certificate comes from the address the ring gives that node, expects the
// ring's node id when it dials, and limits client certificates to client
// requests (node/tls.go).
package security

import "fmt"

// Mode is a port's security mode. NB: a wire enum (it is gossiped in
// ring.Member.Security): only append, never renumber.
type Mode uint8

const (
	// Disabled speaks plaintext only.
	Disabled Mode = iota
	// Transitional accepts TLS and plaintext and dials TLS.
	Transitional
	// Required refuses plaintext.
	Required
)

// String returns the mode's setting text.
func (m Mode) String() string {
	switch m {
	case Disabled:
		return "disabled"
	case Transitional:
		return "transitional"
	case Required:
		return "required"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode reads a mode's setting text.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "disabled":
		return Disabled, nil
	case "transitional":
		return Transitional, nil
	case "required":
		return Required, nil
	}
	return 0, fmt.Errorf("security: %q is not disabled, transitional or required", s)
}

// AcceptsPlaintext reports whether a port in mode m takes plaintext peers.
func (m Mode) AcceptsPlaintext() bool { return m != Required }

// AcceptsTLS reports whether a port in mode m takes TLS peers.
func (m Mode) AcceptsTLS() bool { return m != Disabled }

// DialsTLS reports whether a node in mode m dials a peer that advertises
// mode peer with TLS: a disabled node never does, a required node always
// does, and a transitional one does unless the peer still speaks plaintext
// only.
func (m Mode) DialsTLS(peer Mode) bool {
	return m == Required || m == Transitional && peer != Disabled
}
