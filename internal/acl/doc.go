// Package acl holds the users of mnemo's Redis-protocol port: who may
// connect, with which password, to run which commands on which keys. It is
// pure (no sockets, no goroutines): the resp package asks it, once per AUTH
// or client certificate and once per command.
//
// # The users file
//
// The node's --resp-users setting names a TOML file, one table per user:
//
//	# Hashes come from `mnemo users hash`: no plaintext password is ever here.
//	[users.default]                 # AUTH <password> authenticates as "default"
//	password-hash = "$argon2id$v=19$m=19456,t=2,p=1$...$..."
//	allow = ["all"]                 # read, write, admin; "all" is the three
//
//	[users.reports]
//	password-hash = "$argon2id$v=19$m=19456,t=2,p=1$...$..."
//	allow = ["read"]
//	keys = ["report:*", "stats:*"]  # glob patterns (Redis' * ? [a-z] \x); default ["*"]
//	enabled = true                  # false refuses the user (default true)
//
// Rules: read runs GET, MGET and EXISTS; write runs SET, DEL, UNLINK and
// MSET (SET ... GET needs read too); admin runs INFO and CONFIG. Connection
// commands (PING, HELLO, AUTH, CLIENT, COMMAND, SELECT, ACL WHOAMI,
// MNEMO.QUORUM, QUIT) need no rule. Every key a command names must match
// one of the user's key patterns. A user named in a client certificate
// (URI SAN mnemo://client/<name>) is authenticated without AUTH.
//
// An unknown field, an unknown rule, a bad pattern or a password hash that
// is not mnemo's argon2id form stops the node at start-up with the file
// and the user named.
//
// # Passwords
//
// Passwords are stored as argon2id hashes (RFC 9106) in the PHC string
// form, with OWASP's parameters (19 MiB, 2 passes, 1 lane; about 30 ms on
// one core): a stolen users file does not give the passwords away, unlike
// Redis' unsalted SHA-256. argon2id rather than bcrypt because it is the
// standard's first choice (RFC 9106, OWASP) and has no 72-byte limit.
// Its cost is bounded by running at most MaxConcurrentChecks checks at
// once (a quarter of the cores, at least one), so a flood of AUTH commands
// takes bounded memory and CPU and queues instead. A password that passed
// a user's check is remembered as an HMAC-SHA256 under a random
// per-process key, so a client pool that opens 50 connections with it
// pays one argon2id check, not 50 (measured: redis-benchmark -c 50 spent
// its first 1.5 s logging in without it); a wrong password always pays
// the full check. Hashes are compared in constant time, and an unknown or
// disabled user is checked against a dummy hash of the same cost, so a
// wrong user name cannot be told from a wrong password by the time it
// takes.
package acl
