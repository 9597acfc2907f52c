package resp

import (
	"path"
	"strconv"
	"strings"
)

// Connection and introspection commands: they run on the connection's
// reader goroutine and never call the Backend's data methods.

// redisVersion is the Redis version mnemo answers as (HELLO, INFO): the
// one whose commands and replies it follows, so that client libraries that
// check it enable the right features.
const redisVersion = "7.0.0"

func cmdPing(c *conn, args [][]byte, b []byte) []byte {
	switch len(args) {
	case 1:
		return appendSimple(b, "PONG")
	case 2:
		return appendBulk(b, args[1])
	}
	return appendError(b, "ERR wrong number of arguments for 'ping' command")
}

func cmdEcho(c *conn, args [][]byte, b []byte) []byte { return appendBulk(b, args[1]) }

func cmdQuit(c *conn, args [][]byte, b []byte) []byte {
	c.quit = true
	return appendOK(b)
}

func cmdSelect(c *conn, args [][]byte, b []byte) []byte {
	n, ok := parseInt(args[1])
	switch {
	case !ok:
		return appendError(b, "ERR value is not an integer or out of range")
	case n != 0:
		return appendError(b, "ERR DB index is out of range (mnemo has one keyspace: database 0)")
	}
	return appendOK(b)
}

// authOK reports whether a user and password are accepted without
// Config.Users: only the user matters, as with Redis's nopass default user.
func authOK(user []byte) bool { return string(user) == "default" }

// cmdAuth answers AUTH [user] password. Without Config.Users there are no
// passwords, as with Redis's nopass default user.
func cmdAuth(c *conn, args [][]byte, b []byte) []byte {
	if c.s.cfg.Users != nil {
		var user, pass []byte
		switch len(args) {
		case 2:
			user, pass = []byte("default"), args[1]
		case 3:
			user, pass = args[1], args[2]
		default:
			return appendError(b, "ERR syntax error")
		}
		if !c.authenticate(user, pass) {
			return appendError(b, errWrongPass)
		}
		return appendOK(b)
	}
	switch len(args) {
	case 2:
		return appendError(b, "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	case 3:
		if authOK(args[1]) {
			return appendOK(b)
		}
		return appendError(b, "WRONGPASS invalid username-password pair or user is disabled.")
	}
	return appendError(b, "ERR syntax error")
}

// cmdHello answers HELLO [protover [AUTH user pass] [SETNAME name]]. Both
// RESP2 and RESP3 are served; the reply is a map of server facts.
func cmdHello(c *conn, args [][]byte, b []byte) []byte {
	proto := c.proto
	if len(args) >= 2 {
		v, ok := parseInt(args[1])
		if !ok {
			return appendError(b, "ERR Protocol version is not an integer or out of range")
		}
		if v != 2 && v != 3 {
			return appendError(b, "NOPROTO unsupported protocol version")
		}
		proto = int(v)
	}
	name, setName := "", false
	var authUser, authPass []byte
	for i := 2; i < len(args); i++ {
		switch {
		case equalFold(args[i], "AUTH") && i+2 < len(args):
			authUser, authPass = args[i+1], args[i+2]
			i += 2
		case equalFold(args[i], "SETNAME") && i+1 < len(args):
			if !validClientName(args[i+1]) {
				return appendError(b, errClientName)
			}
			name, setName = string(args[i+1]), true
			i++
		default:
			return appendError(b, "ERR Syntax error in HELLO option '"+trunc(args[i], 128)+"'")
		}
	}
	switch {
	case authUser != nil && c.s.cfg.Users == nil:
		if !authOK(authUser) {
			return appendError(b, errWrongPass)
		}
	case authUser != nil:
		if !c.authenticate(authUser, authPass) {
			return appendError(b, errWrongPass)
		}
	case c.s.cfg.Users != nil && c.user == nil:
		return appendError(b, errNoAuthHello)
	}
	c.proto = proto
	if setName {
		c.name = name
	}
	b = appendMap(b, 7, proto)
	b = appendBulkString(b, "server")
	b = appendBulkString(b, "redis")
	b = appendBulkString(b, "version")
	b = appendBulkString(b, redisVersion)
	b = appendBulkString(b, "proto")
	b = appendInt(b, int64(proto))
	b = appendBulkString(b, "id")
	b = appendInt(b, c.id)
	b = appendBulkString(b, "mode")
	b = appendBulkString(b, "standalone")
	b = appendBulkString(b, "role")
	b = appendBulkString(b, "master")
	b = appendBulkString(b, "modules")
	return appendArray(b, 0)
}

const errClientName = "ERR Client names cannot contain spaces, newlines or special characters."

// validClientName is Redis's rule: printable ASCII without spaces.
func validClientName(name []byte) bool {
	for _, ch := range name {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

func cmdClient(c *conn, args [][]byte, b []byte) []byte {
	sub := args[1]
	switch {
	case equalFold(sub, "SETNAME") && len(args) == 3:
		if !validClientName(args[2]) {
			return appendError(b, errClientName)
		}
		c.name = string(args[2])
		return appendOK(b)
	case equalFold(sub, "GETNAME") && len(args) == 2:
		if c.name == "" {
			return appendNull(b, c.proto)
		}
		return appendBulkString(b, c.name)
	case equalFold(sub, "SETINFO") && len(args) == 4:
		if !equalFold(args[2], "LIB-NAME") && !equalFold(args[2], "LIB-VER") {
			return appendError(b, "ERR Unrecognized option '"+trunc(args[2], 128)+"'")
		}
		return appendOK(b)
	case equalFold(sub, "ID") && len(args) == 2:
		return appendInt(b, c.id)
	case equalFold(sub, "INFO") && len(args) == 2:
		return appendBulkString(b, c.info())
	case equalFold(sub, "SETNAME"), equalFold(sub, "GETNAME"), equalFold(sub, "SETINFO"),
		equalFold(sub, "ID"), equalFold(sub, "INFO"):
		return appendError(b, "ERR wrong number of arguments for 'client|"+strings.ToLower(string(sub))+"' command")
	}
	return appendError(b, "ERR unknown subcommand '"+trunc(sub, 128)+"'. Try CLIENT HELP.")
}

// info is the connection's CLIENT INFO line.
func (c *conn) info() string {
	laddr := ""
	if a := c.nc.LocalAddr(); a != nil {
		laddr = a.String()
	}
	return "id=" + strconv.FormatInt(c.id, 10) + " addr=" + c.remote() + " laddr=" + laddr +
		" name=" + c.name + " db=0 user=" + c.userName() + " resp=" + strconv.Itoa(c.proto) +
		" mnemo-n=" + strconv.Itoa(c.q.N) + " mnemo-r=" + strconv.Itoa(c.q.R) + " mnemo-w=" + strconv.Itoa(c.q.W) + "\n"
}

// userName is the connection's user as CLIENT INFO shows it.
func (c *conn) userName() string {
	if c.user == nil {
		if c.s.cfg.Users != nil {
			return "" // not authenticated yet
		}
		return "default"
	}
	return c.user.Name()
}

// cmdQuorum answers MNEMO.QUORUM [N n] [R r] [W w] | DEFAULT (package doc).
func cmdQuorum(c *conn, args [][]byte, b []byte) []byte {
	if len(args) == 1 {
		b = appendMap(b, 3, c.proto)
		b = appendBulkString(b, "n")
		b = appendInt(b, int64(c.q.N))
		b = appendBulkString(b, "r")
		b = appendInt(b, int64(c.q.R))
		b = appendBulkString(b, "w")
		return appendInt(b, int64(c.q.W))
	}
	if len(args) == 2 && equalFold(args[1], "DEFAULT") {
		c.q = Quorum{}
		return appendOK(b)
	}
	q := c.q
	for i := 1; i < len(args); i += 2 {
		var field *int
		switch {
		case equalFold(args[i], "N"):
			field = &q.N
		case equalFold(args[i], "R"):
			field = &q.R
		case equalFold(args[i], "W"):
			field = &q.W
		default:
			return appendError(b, "ERR MNEMO.QUORUM: expected N, R, W or DEFAULT, got '"+trunc(args[i], 64)+"'")
		}
		if i+1 >= len(args) {
			return appendError(b, "ERR MNEMO.QUORUM: "+strings.ToLower(string(args[i]))+" needs a value")
		}
		v, ok := parseInt(args[i+1])
		if !ok || v < 0 || v > maxQuorum {
			return appendError(b, "ERR MNEMO.QUORUM: "+strings.ToLower(string(args[i]))+
				" must be an integer in [0, "+strconv.Itoa(maxQuorum)+"] (0: the node's default)")
		}
		*field = int(v)
	}
	if q.N > 0 && (q.R > q.N || q.W > q.N) {
		return appendError(b, "ERR MNEMO.QUORUM: r="+strconv.Itoa(q.R)+" and w="+strconv.Itoa(q.W)+
			" must not exceed n="+strconv.Itoa(q.N))
	}
	c.q = q
	return appendOK(b)
}

// configParams are the settings CONFIG GET reports: what redis-benchmark,
// redis-cli and client libraries ask for. Values describe mnemo: no
// snapshots, no append-only file, one database.
func (c *conn) configParams() [][2]string {
	cfg := c.s.cfg
	return [][2]string{
		{"save", ""},
		{"appendonly", "no"},
		{"databases", "1"},
		{"maxclients", strconv.Itoa(cfg.MaxConns)},
		{"timeout", strconv.Itoa(int(cfg.IdleTimeout.Seconds()))},
		{"proto-max-bulk-len", strconv.Itoa(cfg.MaxBulk)},
		{"client-query-buffer-limit", strconv.Itoa(cfg.MaxRequest)},
		{"maxmemory", "0"},
		{"maxmemory-policy", "noeviction"},
		{"cluster-enabled", "no"},
	}
}

func cmdConfig(c *conn, args [][]byte, b []byte) []byte {
	sub := args[1]
	switch {
	case equalFold(sub, "GET"):
		if len(args) < 3 {
			return appendError(b, "ERR wrong number of arguments for 'config|get' command")
		}
		var match [][2]string
		for _, p := range c.configParams() {
			for _, pat := range args[2:] {
				if ok, _ := path.Match(strings.ToLower(string(pat)), p[0]); ok {
					match = append(match, p)
					break
				}
			}
		}
		b = appendMap(b, len(match), c.proto)
		for _, p := range match {
			b = appendBulkString(b, p[0])
			b = appendBulkString(b, p[1])
		}
		return b
	case equalFold(sub, "SET"), equalFold(sub, "RESETSTAT"), equalFold(sub, "REWRITE"):
		return appendError(b, "ERR mnemo does not support CONFIG "+strings.ToUpper(string(sub))+": configure the node with its flags")
	}
	return appendError(b, "ERR unknown subcommand '"+trunc(sub, 128)+"'. Try CONFIG HELP.")
}

// cmdCommand answers COMMAND, COMMAND COUNT|LIST|INFO|DOCS.
func cmdCommand(c *conn, args [][]byte, b []byte) []byte {
	if len(args) == 1 {
		b = appendArray(b, len(commandTable))
		for _, cmd := range commandTable {
			b = appendCommandInfo(b, cmd)
		}
		return b
	}
	sub := args[1]
	switch {
	case equalFold(sub, "COUNT") && len(args) == 2:
		return appendInt(b, int64(len(commandTable)))
	case equalFold(sub, "LIST") && len(args) == 2:
		b = appendArray(b, len(commandTable))
		for _, cmd := range commandTable {
			b = appendBulkString(b, cmd.name)
		}
		return b
	case equalFold(sub, "INFO"):
		cmds := commandTable
		if len(args) > 2 {
			cmds = make([]*command, len(args)-2)
			for i, name := range args[2:] {
				cmds[i] = lookup(name)
			}
		}
		b = appendArray(b, len(cmds))
		for _, cmd := range cmds {
			if cmd == nil {
				b = appendNull(b, c.proto)
			} else {
				b = appendCommandInfo(b, cmd)
			}
		}
		return b
	case equalFold(sub, "DOCS"):
		var cmds []*command
		if len(args) == 2 {
			cmds = commandTable
		} else {
			for _, name := range args[2:] {
				if cmd := lookup(name); cmd != nil {
					cmds = append(cmds, cmd)
				}
			}
		}
		b = appendMap(b, len(cmds), c.proto)
		for _, cmd := range cmds {
			b = appendBulkString(b, cmd.name)
			b = appendMap(b, 3, c.proto)
			b = appendBulkString(b, "summary")
			b = appendBulkString(b, cmd.summary)
			b = appendBulkString(b, "since")
			b = appendBulkString(b, cmd.since)
			b = appendBulkString(b, "group")
			b = appendBulkString(b, cmd.group)
		}
		return b
	case equalFold(sub, "COUNT"), equalFold(sub, "LIST"):
		return appendError(b, "ERR wrong number of arguments for 'command|"+strings.ToLower(string(sub))+"' command")
	}
	return appendError(b, "ERR unknown subcommand '"+trunc(sub, 128)+"'. Try COMMAND HELP.")
}

// appendCommandInfo appends one COMMAND INFO entry in Redis 7's ten-field
// form: name, arity, flags, first key, last key, step, ACL categories,
// tips, key specs, subcommands.
func appendCommandInfo(b []byte, cmd *command) []byte {
	b = appendArray(b, 10)
	b = appendBulkString(b, cmd.name)
	b = appendInt(b, int64(cmd.arity))
	b = appendArray(b, len(cmd.flags))
	for _, f := range cmd.flags {
		b = appendSimple(b, f)
	}
	b = appendInt(b, int64(cmd.first))
	b = appendInt(b, int64(cmd.last))
	b = appendInt(b, int64(cmd.step))
	b = appendArray(b, len(cmd.acl))
	for _, a := range cmd.acl {
		b = appendSimple(b, a)
	}
	b = appendArray(b, 0)
	b = appendArray(b, 0)
	return appendArray(b, 0)
}
