package resp

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mnemo-kv/mnemo/internal/acl"
)

// command is one entry of the command table.
type command struct {
	name  string // lowercase, as Redis spells it in errors and COMMAND
	arity int    // as Redis: n > 0 exactly n arguments (name included), n < 0 at least -n
	// first, last and step locate the keys among the arguments, as in
	// COMMAND INFO: last -1 is the last argument; 0, 0, 0 means no keys.
	first, last, step int
	write             bool     // changes data: ordered against other commands on its keys
	flags             []string // COMMAND INFO flags
	acl               []string // COMMAND INFO ACL categories
	summary, since    string   // COMMAND DOCS
	group             string   // COMMAND DOCS
	idx               int      // position in commandTable, for counts
	// perm is the rules a user needs to run the command (Config.Users);
	// 0 for connection commands, which any authenticated user may run.
	perm acl.Perm
	// noAuth commands may run before the connection has authenticated
	// (AUTH, HELLO, QUIT), as Redis' no_auth flag.
	noAuth bool

	// data runs a command with the Backend, possibly on its own goroutine,
	// and appends its reply to b. It reads only its slot.
	data func(ctx context.Context, be Backend, sl *slot, b []byte) []byte
	// local runs a connection command on the reader goroutine and appends
	// its reply to b. It may change the connection's state.
	local func(c *conn, args [][]byte, b []byte) []byte
}

func (cmd *command) arityOK(n int) bool {
	if cmd.arity >= 0 {
		return n == cmd.arity
	}
	return n >= -cmd.arity
}

// lastKey is the index of cmd's last key argument in a request of n.
func (cmd *command) lastKey(n int) int {
	if cmd.last < 0 {
		return n + cmd.last
	}
	return cmd.last
}

// keyCount is the number of keys of cmd in a request of n arguments.
func (cmd *command) keyCount(n int) int {
	if cmd.step == 0 || cmd.first >= n {
		return 0
	}
	return (min(cmd.lastKey(n), n-1)-cmd.first)/cmd.step + 1
}

// commandTable lists the commands served, in COMMAND's order. Index
// len(commandTable) counts unknown commands. Filled by init (the table
// refers to handlers that read it).
var commandTable []*command

// commandsByName maps lowercase names to commandTable entries.
var commandsByName map[string]*command

// cmdGetEntry and cmdSetEntry are the hot commands, which lookup finds
// without hashing.
var cmdGetEntry, cmdSetEntry *command

func init() {
	ro, rw, conn := []string{"readonly", "fast"}, []string{"write", "denyoom"}, []string{"fast", "stale", "loading"}
	commandTable = []*command{
		{name: "get", arity: 2, first: 1, last: 1, step: 1, flags: ro, acl: []string{"@read", "@string", "@fast"},
			summary: "Returns the string value of a key (the last-write-wins winner among siblings).", since: "1.0.0", group: "string", data: cmdGet, perm: acl.Read},
		{name: "set", arity: -3, first: 1, last: 1, step: 1, write: true, flags: rw, acl: []string{"@write", "@string", "@slow"},
			summary: "Sets the string value of a key, superseding every version. NX/XX/GET read first; no expiry.", since: "1.0.0", group: "string", data: cmdSet, perm: acl.Write},
		{name: "del", arity: -2, first: 1, last: -1, step: 1, write: true, flags: []string{"write"}, acl: []string{"@keyspace", "@write", "@slow"},
			summary: "Deletes one or more keys; returns how many existed.", since: "1.0.0", group: "generic", data: cmdDel, perm: acl.Write},
		{name: "unlink", arity: -2, first: 1, last: -1, step: 1, write: true, flags: []string{"write", "fast"}, acl: []string{"@keyspace", "@write", "@fast"},
			summary: "Deletes one or more keys (same as DEL in mnemo).", since: "4.0.0", group: "generic", data: cmdDel, perm: acl.Write},
		{name: "exists", arity: -2, first: 1, last: -1, step: 1, flags: ro, acl: []string{"@keyspace", "@read", "@fast"},
			summary: "Counts how many of the keys exist.", since: "1.0.0", group: "generic", data: cmdExists, perm: acl.Read},
		{name: "mget", arity: -2, first: 1, last: -1, step: 1, flags: ro, acl: []string{"@read", "@string", "@fast"},
			summary: "Returns the string values of one or more keys.", since: "1.0.0", group: "string", data: cmdMGet, perm: acl.Read},
		{name: "mset", arity: -3, first: 1, last: -1, step: 2, write: true, flags: rw, acl: []string{"@write", "@string", "@slow"},
			summary: "Sets the string values of one or more keys (not atomically).", since: "1.0.1", group: "string", data: cmdMSet, perm: acl.Write},
		{name: "ping", arity: -1, flags: conn, acl: []string{"@fast", "@connection"},
			summary: "Returns the server's liveliness response.", since: "1.0.0", group: "connection", local: cmdPing},
		{name: "echo", arity: 2, flags: conn, acl: []string{"@fast", "@connection"},
			summary: "Returns the given string.", since: "1.0.0", group: "connection", local: cmdEcho},
		{name: "quit", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, acl: []string{"@fast", "@connection"},
			summary: "Closes the connection.", since: "1.0.0", group: "connection", local: cmdQuit, noAuth: true},
		{name: "select", arity: 2, flags: conn, acl: []string{"@fast", "@connection"},
			summary: "Changes the selected database: only 0 exists in mnemo.", since: "1.0.0", group: "connection", local: cmdSelect},
		{name: "hello", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, acl: []string{"@fast", "@connection"},
			summary: "Handshakes with the server (RESP2 or RESP3).", since: "6.0.0", group: "connection", local: cmdHello, noAuth: true},
		{name: "auth", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "no_auth"}, acl: []string{"@fast", "@connection"},
			summary: "Authenticates: mnemo has no passwords; AUTH default <any> succeeds.", since: "1.0.0", group: "connection", local: cmdAuth, noAuth: true},
		{name: "client", arity: -2, flags: conn, acl: []string{"@slow", "@connection"},
			summary: "CLIENT SETNAME|GETNAME|SETINFO|ID|INFO.", since: "2.4.0", group: "connection", local: cmdClient},
		{name: "info", arity: -1, flags: []string{"loading", "stale"}, acl: []string{"@slow", "@dangerous"},
			summary: "Returns information and statistics about the server and the mnemo node.", since: "1.0.0", group: "server", local: cmdInfo, perm: acl.Admin},
		{name: "command", arity: -1, flags: []string{"loading", "stale"}, acl: []string{"@slow", "@connection"},
			summary: "Returns details about the commands mnemo serves.", since: "2.8.13", group: "server", local: cmdCommand},
		{name: "config", arity: -2, flags: []string{"loading", "stale"}, acl: []string{"@slow"},
			summary: "CONFIG GET: read-only view of the settings Redis tools ask for.", since: "2.0.0", group: "server", local: cmdConfig, perm: acl.Admin},
		{name: "acl", arity: -2, flags: []string{"noscript", "loading", "stale"}, acl: []string{"@slow"},
			summary: "ACL WHOAMI: the user this connection is authenticated as.", since: "6.0.0", group: "server", local: cmdACL},
		{name: "mnemo.quorum", arity: -1, flags: conn, acl: []string{"@fast", "@connection"},
			summary: "Sets or shows this connection's N, R and W: MNEMO.QUORUM [N n] [R r] [W w] | DEFAULT.", since: "mnemo", group: "connection", local: cmdQuorum},
	}
	commandsByName = make(map[string]*command, len(commandTable))
	for i, cmd := range commandTable {
		cmd.idx = i
		commandsByName[cmd.name] = cmd
	}
	cmdGetEntry, cmdSetEntry = commandsByName["get"], commandsByName["set"]
}

// maxCommandName bounds, in bytes, the names lookup lowercases.
const maxCommandName = 32

// lookup finds a command by name, case-insensitively, without allocating.
func lookup(name []byte) *command {
	switch {
	case equalFold(name, "GET"):
		return cmdGetEntry
	case equalFold(name, "SET"):
		return cmdSetEntry
	case len(name) > maxCommandName:
		return nil
	}
	var buf [maxCommandName]byte
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	return commandsByName[string(buf[:len(name)])]
}

// unknownCommand is Redis's reply to a command it does not know.
func unknownCommand(args [][]byte) string {
	var sb strings.Builder
	sb.WriteString("ERR unknown command '")
	sb.WriteString(trunc(args[0], 128))
	sb.WriteString("', with args beginning with: ")
	n := 0
	for _, a := range args[1:] {
		if n >= 128 {
			break
		}
		s := fmt.Sprintf("'%s' ", trunc(a, 128-n))
		n += len(s)
		sb.WriteString(s)
	}
	return sb.String()
}

func trunc(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// equalFold reports whether arg equals the uppercase ASCII word w,
// ignoring case.
func equalFold(arg []byte, w string) bool {
	if len(arg) != len(w) {
		return false
	}
	for i := range arg {
		c := arg[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

// Data commands.

// bigValue is the size in bytes from which GET hands the value itself to
// the writer instead of copying it into the reply buffer.
const bigValue = 16 << 10

func cmdGet(ctx context.Context, be Backend, sl *slot, b []byte) []byte {
	v, found, err := be.Get(ctx, sl.args[1], sl.q)
	return appendGet(b, sl, v, found, err)
}

// appendGet appends GET's reply for what the Backend answered.
func appendGet(b []byte, sl *slot, v []byte, found bool, err error) []byte {
	switch {
	case err != nil:
		return appendError(b, errorLine(err))
	case !found:
		return appendNull(b, sl.proto)
	case len(v) >= bigValue:
		sl.value = v
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(v)), 10)
		return append(b, '\r', '\n')
	}
	return appendBulk(b, v)
}

// errExpiry is SET's answer to EX, PX, EXAT and PXAT.
const errExpiry = "ERR mnemo does not support expiry (EX/PX)"

func cmdSet(ctx context.Context, be Backend, sl *slot, b []byte) []byte {
	key, val := sl.args[1], sl.args[2]
	var nx, xx, get, keepTTL, expiry bool
	for i := 3; i < len(sl.args); i++ {
		a := sl.args[i]
		switch {
		case equalFold(a, "NX") && !xx:
			nx = true
		case equalFold(a, "XX") && !nx:
			xx = true
		case equalFold(a, "GET"):
			get = true
		case equalFold(a, "KEEPTTL") && !expiry:
			keepTTL = true
		case (equalFold(a, "EX") || equalFold(a, "PX") || equalFold(a, "EXAT") || equalFold(a, "PXAT")) &&
			!keepTTL && !expiry && i+1 < len(sl.args):
			expiry = true
			i++
		default:
			return appendError(b, "ERR syntax error")
		}
	}
	if expiry {
		return appendError(b, errExpiry)
	}
	if !nx && !xx && !get {
		if err := be.Set(ctx, key, val, sl.q); err != nil {
			return appendError(b, errorLine(err))
		}
		return appendOK(b)
	}
	// NX, XX and GET need the current value: read, then write. Not atomic
	// against other clients; ordered against this connection's commands.
	old, found, err := be.Get(ctx, key, sl.q)
	if err != nil {
		return appendError(b, errorLine(err))
	}
	if (nx && found) || (xx && !found) {
		if get && found {
			return appendBulk(b, old)
		}
		return appendNull(b, sl.proto)
	}
	if err := be.Set(ctx, key, val, sl.q); err != nil {
		return appendError(b, errorLine(err))
	}
	switch {
	case !get:
		return appendOK(b)
	case found:
		return appendBulk(b, old)
	}
	return appendNull(b, sl.proto)
}

func cmdDel(ctx context.Context, be Backend, sl *slot, b []byte) []byte {
	// DEL k k deletes k once: only distinct keys are counted.
	keys := distinct(sl.args[1:])
	var n atomic.Int64
	err := fanOut(len(keys), func(i int) error {
		existed, err := be.Delete(ctx, keys[i], sl.q)
		if existed {
			n.Add(1)
		}
		return err
	})
	if err != nil {
		return appendError(b, errorLine(err))
	}
	return appendInt(b, n.Load())
}

func cmdExists(ctx context.Context, be Backend, sl *slot, b []byte) []byte {
	keys := sl.args[1:]
	found := make([]bool, len(keys))
	err := fanOut(len(keys), func(i int) error {
		_, ok, err := be.Get(ctx, keys[i], sl.q)
		found[i] = ok
		return err
	})
	if err != nil {
		return appendError(b, errorLine(err))
	}
	// EXISTS k k counts k twice, as in Redis.
	var n int64
	for _, ok := range found {
		if ok {
			n++
		}
	}
	return appendInt(b, n)
}

func cmdMGet(ctx context.Context, be Backend, sl *slot, b []byte) []byte {
	keys := sl.args[1:]
	vals := make([][]byte, len(keys))
	found := make([]bool, len(keys))
	err := fanOut(len(keys), func(i int) error {
		v, ok, err := be.Get(ctx, keys[i], sl.q)
		vals[i], found[i] = v, ok
		return err
	})
	if err != nil {
		return appendError(b, errorLine(err))
	}
	b = appendArray(b, len(keys))
	for i, v := range vals {
		if found[i] {
			b = appendBulk(b, v)
		} else {
			b = appendNull(b, sl.proto)
		}
	}
	return b
}

func cmdMSet(ctx context.Context, be Backend, sl *slot, b []byte) []byte {
	if len(sl.args)%2 != 1 {
		return appendError(b, "ERR wrong number of arguments for 'mset' command")
	}
	// MSET k 1 k 2 leaves k = 2: write each key once, with its last value.
	type pair struct{ k, v []byte }
	pairs := make([]pair, 0, len(sl.args)/2)
	last := make(map[string]int, len(sl.args)/2)
	for i := 1; i < len(sl.args); i += 2 {
		k := sl.args[i]
		if j, ok := last[string(k)]; ok {
			pairs[j].v = sl.args[i+1]
			continue
		}
		last[string(k)] = len(pairs)
		pairs = append(pairs, pair{k, sl.args[i+1]})
	}
	err := fanOut(len(pairs), func(i int) error {
		return be.Set(ctx, pairs[i].k, pairs[i].v, sl.q)
	})
	if err != nil {
		return appendError(b, errorLine(err))
	}
	return appendOK(b)
}

// distinct returns keys without repeats, in first-seen order.
func distinct(keys [][]byte) [][]byte {
	if len(keys) == 1 {
		return keys
	}
	seen := make(map[string]struct{}, len(keys))
	out := make([][]byte, 0, len(keys))
	for _, k := range keys {
		if _, ok := seen[string(k)]; !ok {
			seen[string(k)] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

// fanOutWidth bounds the concurrent Backend calls of one multi-key command.
const fanOutWidth = 16

// fanOut calls fn for 0..n-1, up to fanOutWidth at once, and returns the
// first error. Its goroutines end before it returns. A panic in fn is
// returned as an error, so it cannot crash the server from a goroutine
// the caller's recover does not cover.
func fanOut(n int, fn func(i int) error) error {
	if n == 1 {
		return fn(0)
	}
	var (
		next    atomic.Int64
		errOnce sync.Once
		first   error
		wg      sync.WaitGroup
	)
	fail := func(err error) { errOnce.Do(func() { first = err }) }
	for range min(n, fanOutWidth) {
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					fail(fmt.Errorf("backend panic: %v", r)) // a reply line: "ERR backend panic: ..."
				}
			}()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
