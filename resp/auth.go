package resp

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/mnemo-kv/mnemo/internal/acl"
	"github.com/mnemo-kv/mnemo/internal/security"
)

// Authentication and access control, used when Config.Users is set (see
// the package doc, "Users"). Everything here runs on the connection's
// reader goroutine.

// Replies as Redis 7 gives them (checked against redis-server 7.0.15).
const (
	errNoAuth      = "NOAUTH Authentication required."
	errNoAuthHello = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
	errWrongPass   = "WRONGPASS invalid username-password pair or user is disabled."
	errNoPermKey   = "NOPERM this user has no permissions to access one of the keys used as arguments"
)

// errNoPermCmd is Redis' NOPERM for a command; name is as Redis spells
// it, with "|sub" for a subcommand.
func errNoPermCmd(name string) string {
	return "NOPERM this user has no permissions to run the '" + name + "' command"
}

// Failed AUTHs on one connection wait authDelayBase, then twice as long
// each time, up to authDelayMax, before their reply: with at most
// acl.MaxConcurrentChecks password checks at once in the process, a
// guesser gets a few tries a second per connection.
var (
	authDelayBase = 100 * time.Millisecond
	authDelayMax  = 5 * time.Second
)

// denied returns the error reply for a command the connection may not
// run, or "" when it may.
func (c *conn) denied(cmd *command, args [][]byte) string {
	if c.user == nil {
		if cmd.noAuth {
			return ""
		}
		c.s.stats.deniedCommands.Add(1)
		return errNoAuth
	}
	need := cmd.perm
	if cmd == cmdSetEntry && setHasGet(args) {
		need |= acl.Read // SET ... GET returns the old value
	}
	if !c.user.Allowed(need) {
		c.s.stats.deniedCommands.Add(1)
		name := cmd.name
		if cmd.name == "config" {
			name += "|" + strings.ToLower(trunc(args[1], 32))
		}
		return errNoPermCmd(name)
	}
	if cmd.step > 0 {
		for i := cmd.first; i < len(args) && i <= cmd.lastKey(len(args)); i += cmd.step {
			if !c.user.KeyAllowed(args[i]) {
				c.s.stats.deniedKeys.Add(1)
				return errNoPermKey
			}
		}
	}
	return ""
}

// setHasGet reports whether a SET has the GET option.
func setHasGet(args [][]byte) bool {
	for _, a := range args[3:] {
		if equalFold(a, "GET") {
			return true
		}
	}
	return false
}

// authenticate checks a user name and password; on success the
// connection becomes that user and gets the full request limits. A failure
// is counted and waits (authDelay) before it returns.
func (c *conn) authenticate(user, password []byte) bool {
	u, err := c.s.cfg.Users.Authenticate(c.ctx, string(user), password)
	if err != nil {
		c.s.stats.authFailures.Add(1)
		c.authFails++
		// NB: the name given is not logged: a client that swapped user
		// and password would put the password in the log.
		known := c.s.cfg.Users.Lookup(string(user)) != nil
		c.s.log.Debug().Str("remote", c.remote()).Bool("known_user", known).Int("failures", c.authFails).
			Msg("resp: authentication failed")
		if !errors.Is(err, acl.ErrWrongPass) {
			return false // the connection or server is closing
		}
		c.authDelay()
		return false
	}
	c.authFails = 0
	c.setUser(u)
	return true
}

// authDelay waits after the connection's authFails-th failure, or until
// the connection ends.
func (c *conn) authDelay() {
	d := authDelayBase
	for i := 1; i < c.authFails && d < authDelayMax; i++ {
		d *= 2
	}
	d = min(d, authDelayMax)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.ctx.Done():
	}
}

// setUser makes the connection u's and lifts the pre-auth limits.
func (c *conn) setUser(u *acl.User) {
	c.user = u
	c.p.maxBulk, c.p.maxArgs, c.p.unauth = c.s.cfg.MaxBulk, c.s.cfg.MaxArgs, false
}

// tlsConn is a connection that was TLS: *tls.Conn, or a listener wrapper's
// connection that exposes its state.
type tlsConn interface {
	ConnectionState() tls.ConnectionState
}

// certAuth authenticates the connection as the user its verified client
// certificate names (URI SAN mnemo://client/<name>; Config.ClientIdentity),
// if that user exists and is enabled. It runs after the connection's first
// read, by which the handshake is done.
func (c *conn) certAuth() {
	identify := c.s.cfg.ClientIdentity
	if identify == nil {
		identify = VerifiedClientName
	}
	name, ok := identify(c.nc)
	if !ok {
		return
	}
	if u := c.s.cfg.Users.Lookup(name); u != nil {
		c.setUser(u)
		c.s.log.Debug().Str("remote", c.remote()).Str("user", name).Msg("resp: authenticated by client certificate")
	}
}

// VerifiedClientName returns the client name (mnemo://client/<name>) of a
// TLS connection's client certificate when the tls.Config verified its
// chain (ClientAuth VerifyClientCertIfGiven or RequireAndVerifyClientCert:
// VerifiedChains is set). The default Config.ClientIdentity.
func VerifiedClientName(nc net.Conn) (string, bool) {
	tc, ok := nc.(tlsConn)
	if !ok {
		return "", false
	}
	cs := tc.ConnectionState()
	if !cs.HandshakeComplete || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return "", false
	}
	id, err := security.IdentityOf(cs.PeerCertificates[0])
	return id.Name, err == nil && id.Kind == security.ClientIdentity
}

// cmdACL answers ACL WHOAMI.
func cmdACL(c *conn, args [][]byte, b []byte) []byte {
	sub := args[1]
	switch {
	case equalFold(sub, "WHOAMI") && len(args) == 2:
		if c.user == nil {
			return appendBulkString(b, "default") // no users: everyone is default
		}
		return appendBulkString(b, c.user.Name())
	case equalFold(sub, "WHOAMI"):
		return appendError(b, "ERR wrong number of arguments for 'acl|whoami' command")
	}
	return appendError(b, "ERR unknown subcommand '"+trunc(sub, 128)+"'. Try ACL HELP.")
}
