package security

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// IdentityKind says what a certificate's holder is.
type IdentityKind uint8

const (
	// NodeIdentity is a cluster member: URI SAN mnemo://node/<node-id>.
	NodeIdentity IdentityKind = iota + 1
	// ClientIdentity is a client (SDK, CLI, operator): URI SAN
	// mnemo://client/<name>. It may call the client kinds only.
	ClientIdentity
)

// String names the kind as its URI's host part does.
func (k IdentityKind) String() string {
	switch k {
	case NodeIdentity:
		return "node"
	case ClientIdentity:
		return "client"
	}
	return fmt.Sprintf("IdentityKind(%d)", uint8(k))
}

// Identity is who a certificate says its holder is.
type Identity struct {
	Kind IdentityKind
	// Name is the node id (NodeIdentity) or the client's name.
	Name string
}

// String is the identity's URI, mnemo://node/<id> or mnemo://client/<name>.
func (id Identity) String() string { return "mnemo://" + id.Kind.String() + "/" + id.Name }

// URI returns the identity as the URI SAN a certificate carries.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "mnemo", Host: id.Kind.String(), Path: "/" + id.Name}
}

// NodeURI is the URI SAN naming node id.
func NodeURI(id string) *url.URL { return Identity{NodeIdentity, id}.URI() }

// ClientURI is the URI SAN naming a client.
func ClientURI(name string) *url.URL { return Identity{ClientIdentity, name}.URI() }

// ErrNoIdentity is returned by IdentityOf for a certificate without exactly
// one mnemo:// URI SAN.
var ErrNoIdentity = errors.New("security: certificate names no mnemo identity (URI SAN mnemo://node/<id> or mnemo://client/<name>)")

// IdentityOf reads the one mnemo:// URI SAN of cert. A certificate with
// none, or with several (which could name two nodes at once), has none.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	var found []Identity
	for _, u := range cert.URIs {
		if u.Scheme != "mnemo" {
			continue
		}
		id, err := parseIdentity(u)
		if err != nil {
			return Identity{}, err
		}
		found = append(found, id)
	}
	switch len(found) {
	case 0:
		return Identity{}, ErrNoIdentity
	case 1:
		return found[0], nil
	}
	return Identity{}, fmt.Errorf("security: certificate names %d mnemo identities, want one: %w", len(found), ErrNoIdentity)
}

func parseIdentity(u *url.URL) (Identity, error) {
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || strings.Contains(name, "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Identity{}, fmt.Errorf("security: malformed identity URI %q", u.String())
	}
	switch u.Host {
	case "node":
		return Identity{NodeIdentity, name}, nil
	case "client":
		return Identity{ClientIdentity, name}, nil
	}
	return Identity{}, fmt.Errorf("security: identity URI %q is neither mnemo://node/ nor mnemo://client/", u.String())
}
