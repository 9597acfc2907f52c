// Package adminauth locks the admin HTTP port: a Router that every route
// is registered on, with who may call it, and that checks every request
// before the route's handler runs. A route registered without saying is
// admin-only, and a path that matches no route needs the admin token too
// (so a probe cannot tell routes from 404s), so a new route cannot be
// left open by mistake; Routes lists what is registered, so a test can
// check each one from the server itself.
//
// Credentials, in order:
//
//   - Authorization: Bearer <token>: the admin token (--admin-token-file)
//     opens every route; the metrics token (--metrics-token-file) opens
//     only Metrics routes (/metrics), for a Prometheus that should not
//     read /status or profiles. Tokens are compared in constant time (as
//     SHA-256 digests, so not even their length leaks).
//   - A TLS client certificate verified against the node's CAs that names
//     a mnemo client or node (URI SAN mnemo://client/<name> or
//     mnemo://node/<id>): opens every route.
//
// Public routes (/healthz only) need nothing. Without any token the
// router is Open (Config.Open): the node allows that only on a loopback
// address, or with --insecure. A refused request gets 401 with a
// WWW-Authenticate: Bearer header (403 when a metrics token asks for an
// admin route); the reply never echoes the token.
package adminauth
