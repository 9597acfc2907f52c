package resp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	mtestutil "github.com/mnemo-kv/mnemo/internal/testutil"
	"github.com/mnemo-kv/mnemo/internal/wire"
)

// step is one command and the reply it must get.
type step struct {
	args []string
	want any
}

func runSteps(t *testing.T, c *client, steps []step) {
	t.Helper()
	for _, st := range steps {
		got := c.do(st.args...)
		if !reflect.DeepEqual(got, st.want) {
			t.Errorf("%q: got %#v, want %#v", st.args, got, st.want)
		}
	}
}

func TestCommands(t *testing.T) {
	f := newFake()
	_, addr := startServer(t, Config{}, f)
	c := dial(t, addr)
	runSteps(t, c, []step{
		{[]string{"PING"}, status("PONG")},
		{[]string{"ping", "hi there"}, "hi there"},
		{[]string{"PING", "a", "b"}, errReply("ERR wrong number of arguments for 'ping' command")},
		{[]string{"ECHO", "x\r\ny"}, "x\r\ny"},
		{[]string{"ECHO"}, errReply("ERR wrong number of arguments for 'echo' command")},

		{[]string{"GET", "k"}, nil},
		{[]string{"SET", "k", "v1"}, status("OK")},
		{[]string{"GET", "k"}, "v1"},
		{[]string{"set", "k", ""}, status("OK")},
		{[]string{"GET", "k"}, ""},
		{[]string{"SET", "k", "v2", "KEEPTTL"}, status("OK")},
		{[]string{"SET", "k", "v3", "GET"}, "v2"},
		{[]string{"SET", "k", "v4", "NX"}, nil},
		{[]string{"SET", "k", "v4", "NX", "GET"}, "v3"},
		{[]string{"SET", "new", "n1", "XX"}, nil},
		{[]string{"SET", "new", "n1", "NX"}, status("OK")},
		{[]string{"SET", "new", "n2", "XX", "GET"}, "n1"},
		{[]string{"SET", "fresh", "f", "GET"}, nil},
		{[]string{"GET", "fresh"}, "f"},
		{[]string{"SET", "k", "v", "EX", "10"}, errReply("ERR mnemo does not support expiry (EX/PX)")},
		{[]string{"SET", "k", "v", "px", "10"}, errReply("ERR mnemo does not support expiry (EX/PX)")},
		{[]string{"SET", "k", "v", "EX"}, errReply("ERR syntax error")},
		{[]string{"SET", "k", "v", "NX", "XX"}, errReply("ERR syntax error")},
		{[]string{"SET", "k", "v", "BOGUS"}, errReply("ERR syntax error")},
		{[]string{"SET", "k"}, errReply("ERR wrong number of arguments for 'set' command")},
		{[]string{"GET", "k"}, "v3"},

		{[]string{"MSET", "a", "1", "b", "2", "a", "3"}, status("OK")},
		{[]string{"MSET", "a", "1", "b"}, errReply("ERR wrong number of arguments for 'mset' command")},
		{[]string{"MGET", "a", "b", "nope", "a"}, []any{"3", "2", nil, "3"}},
		{[]string{"EXISTS", "a", "nope", "a", "b"}, int64(3)},
		{[]string{"EXISTS", "nope"}, int64(0)},
		{[]string{"DEL", "a", "a", "nope", "b"}, int64(2)},
		{[]string{"UNLINK", "fresh"}, int64(1)},
		{[]string{"DEL", "a"}, int64(0)},
		{[]string{"MGET", "a", "b"}, []any{nil, nil}},

		{[]string{"SELECT", "0"}, status("OK")},
		{[]string{"SELECT", "1"}, errReply("ERR DB index is out of range (mnemo has one keyspace: database 0)")},
		{[]string{"SELECT", "x"}, errReply("ERR value is not an integer or out of range")},
		{[]string{"CLIENT", "GETNAME"}, nil},
		{[]string{"CLIENT", "SETNAME", "app-1"}, status("OK")},
		{[]string{"CLIENT", "GETNAME"}, "app-1"},
		{[]string{"CLIENT", "SETNAME", "bad name"}, errReply(errClientName)},
		{[]string{"CLIENT", "SETINFO", "LIB-NAME", "redis-py"}, status("OK")},
		{[]string{"CLIENT", "SETINFO", "lib-ver", "5.0"}, status("OK")},
		{[]string{"CLIENT", "SETINFO", "color", "red"}, errReply("ERR Unrecognized option 'color'")},
		{[]string{"CLIENT", "KILL"}, errReply("ERR unknown subcommand 'KILL'. Try CLIENT HELP.")},
		{[]string{"CLIENT", "GETNAME", "x"}, errReply("ERR wrong number of arguments for 'client|getname' command")},
		{[]string{"AUTH", "pw"}, errReply("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")},
		{[]string{"AUTH", "default", "anything"}, status("OK")},
		{[]string{"AUTH", "bob", "pw"}, errReply("WRONGPASS invalid username-password pair or user is disabled.")},

		{[]string{"CONFIG", "GET", "save"}, []any{"save", ""}},
		{[]string{"CONFIG", "GET", "appendonly"}, []any{"appendonly", "no"}},
		{[]string{"config", "get", "SAVE", "databases"}, []any{"save", "", "databases", "1"}},
		{[]string{"CONFIG", "GET", "maxmemory*"}, []any{"maxmemory", "0", "maxmemory-policy", "noeviction"}},
		{[]string{"CONFIG", "GET", "nothing"}, []any{}},
		{[]string{"CONFIG", "GET"}, errReply("ERR wrong number of arguments for 'config|get' command")},
		{[]string{"CONFIG", "SET", "save", ""}, errReply("ERR mnemo does not support CONFIG SET: configure the node with its flags")},
		{[]string{"CONFIG", "WHAT"}, errReply("ERR unknown subcommand 'WHAT'. Try CONFIG HELP.")},
		{[]string{"COMMAND", "COUNT"}, int64(len(commandTable))},
		{[]string{"COMMAND", "NOPE"}, errReply("ERR unknown subcommand 'NOPE'. Try COMMAND HELP.")},

		{[]string{"FLUSHALL"}, errReply("ERR unknown command 'FLUSHALL', with args beginning with: ")},
		{[]string{"hset", "h", "f", "v"}, errReply("ERR unknown command 'hset', with args beginning with: 'h' 'f' 'v' ")},
		{[]string{"x\r\ny", "a\nb"}, errReply("ERR unknown command 'x  y', with args beginning with: 'a b' ")},
		{[]string{strings.Repeat("z", 200)}, errReply("ERR unknown command '" + strings.Repeat("z", 128) + "', with args beginning with: ")},
		{[]string{"PING"}, status("PONG")},
	})

	// COMMAND and its INFO, DOCS, LIST forms are well-formed and cover the table.
	cmds, ok := c.do("COMMAND").([]any)
	if !ok || len(cmds) != len(commandTable) {
		t.Fatalf("COMMAND: %#v", cmds)
	}
	get := cmds[0].([]any)
	if len(get) != 10 || get[0] != "get" || get[1] != int64(2) || get[3] != int64(1) {
		t.Errorf("COMMAND entry for get: %#v", get)
	}
	if got := c.do("COMMAND", "INFO", "get", "nope"); !reflect.DeepEqual(got, []any{get, nil}) {
		t.Errorf("COMMAND INFO get nope: %#v", got)
	}
	docs, ok := c.do("COMMAND", "DOCS", "set").([]any)
	if !ok || len(docs) != 2 || docs[0] != "set" || len(docs[1].([]any)) != 6 {
		t.Errorf("COMMAND DOCS set: %#v", docs)
	}
	if docs, ok := c.do("COMMAND", "DOCS").([]any); !ok || len(docs) != 2*len(commandTable) {
		t.Errorf("COMMAND DOCS: %d elements", len(docs))
	}
	if list, ok := c.do("COMMAND", "LIST").([]any); !ok || len(list) != len(commandTable) || list[len(list)-1] != "mnemo.quorum" {
		t.Errorf("COMMAND LIST: %#v", list)
	}

	if got := c.do("QUIT"); got != status("OK") {
		t.Errorf("QUIT: %#v", got)
	}
	c.readEOF()
}

// TestBigValues checks values larger than the read and write buffers, in
// a pipeline with small ones, and a value at MaxBulk.
func TestBigValues(t *testing.T) {
	_, addr := startServer(t, Config{MaxBulk: 300 << 10}, newFake())
	c := dial(t, addr)
	big := strings.Repeat("0123456789abcdef", 300<<10/16)
	mid := strings.Repeat("m", bigValue)
	var req []byte
	for _, cmd := range [][]string{
		{"SET", "big", big}, {"SET", "mid", mid}, {"SET", "small", "s"},
		{"GET", "big"}, {"GET", "small"}, {"GET", "mid"}, {"MGET", "mid", "small", "big"}, {"GET", "big"},
	} {
		req = append(req, encode(cmd...)...)
	}
	c.write(req)
	for i, want := range []any{status("OK"), status("OK"), status("OK"), big, "s", mid, []any{mid, "s", big}, big} {
		if got := c.read(); !reflect.DeepEqual(got, want) {
			t.Errorf("reply %d: got %.60q..., want %.60q...", i, got, want)
		}
	}
}

func TestInlineCommands(t *testing.T) {
	_, addr := startServer(t, Config{}, newFake())
	c := dial(t, addr)
	c.write([]byte("PING\r\nSET greeting \"hello world\"\r\nGET greeting\nECHO 'it\\'s'\r\n\r\nNOPE a\r\n"))
	for _, want := range []any{status("PONG"), status("OK"), "hello world", "it's",
		errReply("ERR unknown command 'NOPE', with args beginning with: 'a' ")} {
		if got := c.read(); !reflect.DeepEqual(got, want) {
			t.Errorf("got %#v, want %#v", got, want)
		}
	}
}

func TestInfo(t *testing.T) {
	f := newFake()
	_, addr := startServer(t, Config{MaxConns: 77}, f)
	c := dial(t, addr)
	c.do("SET", "a", "1")
	info, ok := c.do("INFO").(string)
	if !ok {
		t.Fatalf("INFO: %#v", info)
	}
	for _, want := range []string{
		"# Server\r\nredis_version:7.0.0\r\n", "mnemo_version:test\r\n", "node_id:n1\r\n",
		"# Clients\r\nconnected_clients:1\r\nmaxclients:77\r\n",
		"# Stats\r\ntotal_connections_received:1\r\ntotal_commands_processed:2\r\n",
		"# Replication\r\nrole:master\r\nmnemo_n:3\r\n",
		"# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	// The Backend's Server fields join the server's own section.
	if strings.Count(info, "# Server") != 1 || strings.Index(info, "node_id") > strings.Index(info, "# Clients") {
		t.Errorf("Server section not merged:\n%s", info)
	}
	repl := c.do("info", "REPLICATION").(string)
	if !strings.HasPrefix(repl, "# Replication\r\n") || strings.Contains(repl, "# Server") {
		t.Errorf("INFO replication:\n%s", repl)
	}
	two := c.do("INFO", "clients", "keyspace").(string)
	if !strings.Contains(two, "# Clients") || !strings.Contains(two, "# Keyspace") || strings.Contains(two, "# Stats") {
		t.Errorf("INFO clients keyspace:\n%s", two)
	}
	if got := c.do("INFO", "nosuchsection"); got != "" {
		t.Errorf("INFO nosuchsection: %#v", got)
	}
	if all := c.do("INFO", "all").(string); !strings.Contains(all, "# Keyspace") || !strings.Contains(all, "# Server") {
		t.Errorf("INFO all:\n%s", all)
	}
}

func TestHello(t *testing.T) {
	f := newFake()
	_, addr := startServer(t, Config{}, f)
	c := dial(t, addr)
	h, ok := c.do("HELLO").([]any)
	if !ok || len(h) != 14 || h[0] != "server" || h[5] != int64(2) {
		t.Fatalf("HELLO: %#v", h)
	}
	if got := c.do("HELLO", "4"); got != errReply("NOPROTO unsupported protocol version") {
		t.Errorf("HELLO 4: %#v", got)
	}
	if got := c.do("HELLO", "3", "AUTH", "bob", "x"); got != errReply("WRONGPASS invalid username-password pair or user is disabled.") {
		t.Errorf("HELLO 3 AUTH bob: %#v", got)
	}
	if got := c.do("GET", "nope"); got != nil {
		t.Errorf("GET after failed HELLO: %#v", got) // still RESP2
	}
	// RESP3: maps and the null type.
	h3, ok := c.do("HELLO", "3", "AUTH", "default", "pw", "SETNAME", "r3").(respMap)
	if !ok || len(h3) != 14 || h3[5] != int64(3) {
		t.Fatalf("HELLO 3: %#v", h3)
	}
	c.write(encode("GET", "nope"))
	if line, _ := c.r.ReadString('\n'); line != "_\r\n" {
		t.Errorf("RESP3 GET of a missing key: %q, want the null type", line)
	}
	if got := c.do("CONFIG", "GET", "save"); !reflect.DeepEqual(got, respMap{"save", ""}) {
		t.Errorf("RESP3 CONFIG GET: %#v", got)
	}
	if got := c.do("CLIENT", "GETNAME"); got != "r3" {
		t.Errorf("CLIENT GETNAME after HELLO SETNAME: %#v", got)
	}
	if got := c.do("MNEMO.QUORUM"); !reflect.DeepEqual(got, respMap{"n", int64(0), "r", int64(0), "w", int64(0)}) {
		t.Errorf("RESP3 MNEMO.QUORUM: %#v", got)
	}
	if got := c.do("HELLO", "2"); len(got.([]any)) != 14 {
		t.Errorf("back to RESP2: %#v", got)
	}
}

func TestQuorumPerConnection(t *testing.T) {
	f := newFake()
	_, addr := startServer(t, Config{}, f)
	c := dial(t, addr)
	other := dial(t, addr)

	check := func(op, key string, want Quorum) {
		t.Helper()
		if got, ok := f.quorum(op, key); !ok || got != want {
			t.Errorf("%s %s: backend got quorum %+v (called: %v), want %+v", op, key, got, ok, want)
		}
	}
	runSteps(t, c, []step{
		{[]string{"MNEMO.QUORUM"}, []any{"n", int64(0), "r", int64(0), "w", int64(0)}},
		{[]string{"SET", "k0", "v"}, status("OK")},
		{[]string{"mnemo.quorum", "n", "3", "R", "2", "w", "1"}, status("OK")},
		{[]string{"MNEMO.QUORUM"}, []any{"n", int64(3), "r", int64(2), "w", int64(1)}},
		{[]string{"SET", "k1", "v"}, status("OK")},
		{[]string{"GET", "k1"}, "v"},
		{[]string{"DEL", "k1"}, int64(1)},
		{[]string{"MNEMO.QUORUM", "W", "3"}, status("OK")},
		{[]string{"MNEMO.QUORUM", "R", "4"}, errReply("ERR MNEMO.QUORUM: r=4 and w=3 must not exceed n=3")},
		{[]string{"MNEMO.QUORUM", "R", "-1"}, errReply("ERR MNEMO.QUORUM: r must be an integer in [0, 16] (0: the node's default)")},
		{[]string{"MNEMO.QUORUM", "N", "17"}, errReply("ERR MNEMO.QUORUM: n must be an integer in [0, 16] (0: the node's default)")},
		{[]string{"MNEMO.QUORUM", "X", "1"}, errReply("ERR MNEMO.QUORUM: expected N, R, W or DEFAULT, got 'X'")},
		{[]string{"MNEMO.QUORUM", "R"}, errReply("ERR MNEMO.QUORUM: r needs a value")},
		{[]string{"MNEMO.QUORUM"}, []any{"n", int64(3), "r", int64(2), "w", int64(3)}}, // failed calls change nothing
		{[]string{"SET", "k2", "v"}, status("OK")},
		{[]string{"MNEMO.QUORUM", "DEFAULT"}, status("OK")},
		{[]string{"SET", "k3", "v"}, status("OK")},
	})
	check("set", "k0", Quorum{})
	check("set", "k1", Quorum{N: 3, R: 2, W: 1})
	check("get", "k1", Quorum{N: 3, R: 2, W: 1})
	check("del", "k1", Quorum{N: 3, R: 2, W: 1})
	check("set", "k2", Quorum{N: 3, R: 2, W: 3})
	check("set", "k3", Quorum{})

	// Another connection keeps the node defaults.
	if got := other.do("SET", "o", "v"); got != status("OK") {
		t.Fatal(got)
	}
	check("set", "o", Quorum{})

	// In a pipeline each command keeps the quorum it was read with, even
	// while earlier ones are still running.
	c.write(append(append(append(encode("SET", "p1", "v"), encode("MNEMO.QUORUM", "W", "1")...),
		encode("SET", "p2", "v")...), encode("MNEMO.QUORUM", "DEFAULT")...))
	for range 4 {
		if got := c.read(); got != status("OK") {
			t.Fatalf("pipeline: %#v", got)
		}
	}
	check("set", "p1", Quorum{})
	check("set", "p2", Quorum{W: 1})
}

func TestBackendErrors(t *testing.T) {
	f := newFake()
	f.hook = func(ctx context.Context, op string, key, value []byte) error {
		switch string(key) {
		case "quorum":
			return fmt.Errorf("set: %w", quorumErr{})
		case "wire":
			return fmt.Errorf("forward: %w", &wire.Error{Code: wire.CodeTooLarge, Msg: "store: value too large: 5000000 bytes, limit 1048576"})
		case "coded":
			return codedErr{}
		case "closed":
			return errors.New("node: closed")
		case "panic":
			panic("backend bug")
		}
		return nil
	}
	s, addr := startServer(t, Config{}, f)
	c := dial(t, addr)
	runSteps(t, c, []step{
		{[]string{"SET", "quorum", "v"}, errReply("ERR quorum failed: put acknowledged by 1 of 3 replicas asked, 2 needed")},
		{[]string{"GET", "wire"}, errReply("ERR store: value too large: 5000000 bytes, limit 1048576")},
		{[]string{"DEL", "coded"}, errReply("TIMEOUT replica did not answer")},
		{[]string{"GET", "closed"}, errReply("ERR node: closed")},
		{[]string{"MGET", "a", "quorum", "b"}, errReply("ERR quorum failed: put acknowledged by 1 of 3 replicas asked, 2 needed")},
		{[]string{"MSET", "a", "1", "quorum", "2"}, errReply("ERR quorum failed: put acknowledged by 1 of 3 replicas asked, 2 needed")},
		{[]string{"GET", "panic"}, errReply("ERR internal error in 'get': backend bug")},
		{[]string{"MGET", "x", "panic"}, errReply("ERR backend panic: backend bug")},
		{[]string{"PING"}, status("PONG")},
	})
	if st := s.Stats(); st.Panics != 1 || st.ErrorReplies != 8 {
		t.Errorf("stats %+v, want 1 panic and 8 error replies", st)
	}
}

// quorumErr words its reply as node.QuorumError does: without its Go
// text's "node: ".
type quorumErr struct{}

func (quorumErr) Error() string {
	return "node: quorum failed: put acknowledged by 1 of 3 replicas asked, 2 needed"
}
func (quorumErr) RESPError() string {
	return "ERR quorum failed: put acknowledged by 1 of 3 replicas asked, 2 needed"
}

type codedErr struct{}

func (codedErr) Error() string     { return "replica did not answer" }
func (codedErr) RESPError() string { return "TIMEOUT replica did not answer" }

// TestPipeline sends 1000 commands in one write and checks every reply
// comes back in order, and that a pipeline behaves as if run in order.
func TestPipeline(t *testing.T) {
	f := newFake()
	_, addr := startServer(t, Config{}, f)
	c := dial(t, addr)
	var req []byte
	var want []any
	for i := range 250 {
		k, v := "k"+strconv.Itoa(i%20), "v"+strconv.Itoa(i)
		req = append(req, encode("SET", k, v)...)
		req = append(req, encode("GET", k)...)
		req = append(req, encode("PING")...)
		req = append(req, encode("EXISTS", k, "nope")...)
		want = append(want, status("OK"), v, status("PONG"), int64(1))
	}
	c.write(req)
	for i, w := range want {
		if got := c.read(); !reflect.DeepEqual(got, w) {
			t.Fatalf("reply %d: got %#v, want %#v", i, got, w)
		}
	}
	if got := c.do("PING"); got != status("PONG") {
		t.Fatal(got)
	}
}

// warmUp makes c's connection see a slow Backend (a GET of "slow" takes
// 2ms with slowHook), so that its pipelined commands run concurrently.
func warmUp(t *testing.T, c *client) {
	t.Helper()
	if got := c.do("GET", "slow"); got != nil {
		t.Fatalf("warm-up GET: %#v", got)
	}
}

// slowHook delays calls on key "slow" by 2ms, a replica round trip.
func slowHook(ctx context.Context, key []byte) error {
	if string(key) == "slow" {
		return wait(ctx, 2*time.Millisecond)
	}
	return nil
}

// TestPipelineConcurrent checks that, against a slow Backend, pipelined
// commands on different keys reach it together: each Get waits until 8
// are in flight.
func TestPipelineConcurrent(t *testing.T) {
	const n = 8
	f := newFake()
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	f.hook = func(ctx context.Context, op string, key, value []byte) error {
		if string(key) == "slow" {
			return slowHook(ctx, key)
		}
		mu.Lock()
		if arrived++; arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	_, addr := startServer(t, Config{}, f)
	c := dial(t, addr)
	warmUp(t, c)
	var req []byte
	for i := range n {
		req = append(req, encode("GET", "k"+strconv.Itoa(i))...)
	}
	c.write(req)
	for range n {
		if got := c.read(); got != nil {
			t.Fatalf("got %#v", got)
		}
	}
	if p := f.peak(); p != n {
		t.Errorf("peak concurrency %d, want %d", p, n)
	}
}

// TestPipelineSequentialWhenFast checks that against a fast Backend a
// pipeline runs one command at a time on the reader goroutine (a
// goroutine per command would cost more than the call).
func TestPipelineSequentialWhenFast(t *testing.T) {
	f := newFake()
	_, addr := startServer(t, Config{}, f)
	c := dial(t, addr)
	var req []byte
	for i := range 100 {
		req = append(req, encode("SET", "k"+strconv.Itoa(i), "v")...)
	}
	c.write(req)
	for range 100 {
		if got := c.read(); got != status("OK") {
			t.Fatalf("got %#v", got)
		}
	}
	if p := f.peak(); p != 1 {
		t.Errorf("peak concurrency %d, want 1", p)
	}
}

// TestPipelineOrderOnSameKey checks that commands on one key are not
// reordered by concurrency: the first SET is slow, yet the GET after the
// second SET reads the second value.
func TestPipelineOrderOnSameKey(t *testing.T) {
	f := newFake()
	firstStarted := make(chan struct{})
	var once sync.Once
	f.hook = func(ctx context.Context, op string, key, value []byte) error {
		switch {
		case op == "set" && string(value) == "first":
			once.Do(func() { close(firstStarted) })
			return wait(ctx, 20*time.Millisecond) // a slow replica
		case op == "set" && string(value) == "third":
			return wait(ctx, 20*time.Millisecond)
		case op == "get" && string(key) == "other":
			// Runs while the first SET is in flight, if they run concurrently.
			select {
			case <-firstStarted:
			case <-ctx.Done():
			}
		}
		return slowHook(ctx, key)
	}
	_, addr := startServer(t, Config{}, f)
	c := dial(t, addr)
	warmUp(t, c)
	var req []byte
	for _, cmd := range [][]string{
		{"SET", "k", "first"}, {"GET", "other"}, {"SET", "k", "second"}, {"GET", "k"},
		{"MSET", "a", "1", "k", "third"}, {"MGET", "k", "a"}, {"DEL", "k"}, {"EXISTS", "k"},
		{"SET", "k", "first"}, {"SET", "k", "last"}, {"GET", "k"},
	} {
		req = append(req, encode(cmd...)...)
	}
	c.write(req)
	for i, want := range []any{status("OK"), nil, status("OK"), "second", status("OK"), []any{"third", "1"}, int64(1), int64(0),
		status("OK"), status("OK"), "last"} {
		if got := c.read(); !reflect.DeepEqual(got, want) {
			t.Errorf("reply %d: got %#v, want %#v", i, got, want)
		}
	}
	if p := f.peak(); p < 2 {
		t.Errorf("peak concurrency %d: the pipeline did not run concurrently, so ordering was not tested", p)
	}
}

func TestMalformedInput(t *testing.T) {
	// StallTimeout is short for SendGarbage's frames that never end a line.
	s, addr := startServer(t, Config{MaxBulk: 1000, MaxArgs: 100, MaxRequest: 4096, StallTimeout: 300 * time.Millisecond}, newFake())
	for _, tt := range []struct{ in, reply string }{
		{"*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"},
		{"*1\r\n$1001\r\n", "ERR Protocol error: invalid bulk length: 1001 bytes exceed the limit of 1000"},
		{"*101\r\n", "ERR Protocol error: invalid multibulk length: 101 arguments exceed the limit of 100"},
		{"*x\r\n", "ERR Protocol error: invalid multibulk length"},
		{"*2\r\n:1\r\n", "ERR Protocol error: expected '$', got ':'"},
		{"*1\r\n$4\r\nPINGxx", "ERR Protocol error: bulk string not terminated by CRLF"},
		{"SET \"a\r\n", "ERR Protocol error: unbalanced quotes in request"},
		{"*5\r\n" + strings.Repeat("$900\r\n"+strings.Repeat("x", 900)+"\r\n", 5), "ERR Protocol error: request exceeds the limit of 4096 bytes"},
		// The replies to the commands before the bad one come first.
		{"PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"},
	} {
		c := dial(t, addr)
		c.write([]byte(tt.in))
		for range strings.Count(tt.in, "PING\r\n") {
			if got := c.read(); got != status("PONG") {
				t.Errorf("%q: got %#v before the error, want PONG", tt.in, got)
			}
		}
		if got := c.read(); got != errReply(tt.reply) {
			t.Errorf("%q: got %#v, want %q", tt.in, got, tt.reply)
		}
		c.readEOF()
	}
	// The server still serves.
	c := dial(t, addr)
	if got := c.do("SET", "k", "v"); got != status("OK") {
		t.Fatal(got)
	}
	if st := s.Stats(); st.ProtocolErrors != 9 {
		t.Errorf("protocol errors %d, want 9", st.ProtocolErrors)
	}
	mtestutil.SendGarbage(t, addr) // random bytes, huge and truncated frames, a stalled client
	if got := c.do("GET", "k"); got != "v" {
		t.Fatalf("after garbage: %#v", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	s, addr := startServer(t, Config{IdleTimeout: 100 * time.Millisecond}, newFake())
	c := dial(t, addr)
	if got := c.do("PING"); got != status("PONG") {
		t.Fatal(got)
	}
	c.readEOF() // closed by the server once idle
	mtestutil.Eventually(t, 5*time.Second, "idle connection dropped", func() (bool, string) {
		st := s.Stats()
		return st.ConnsOpen == 0 && st.Stalls == 0, fmt.Sprintf("%+v", st)
	})
}

func TestStalledClient(t *testing.T) {
	// Idle connections are never closed; a request that stops halfway is.
	s, addr := startServer(t, Config{StallTimeout: 100 * time.Millisecond}, newFake())
	idle := dial(t, addr)
	c := dial(t, addr)
	c.write([]byte("*2\r\n$3\r\nGET\r\n$10\r\nabc"))
	c.readEOF()
	mtestutil.Eventually(t, 5*time.Second, "stalled connection dropped", func() (bool, string) {
		st := s.Stats()
		return st.Stalls == 1 && st.ConnsOpen == 1, fmt.Sprintf("%+v", st)
	})
	if got := idle.do("PING"); got != status("PONG") {
		t.Fatalf("idle connection: %#v", got)
	}
}

// TestSlowReader checks that a client that pipelines without reading is
// disconnected by WriteTimeout rather than pinning the connection.
func TestSlowReader(t *testing.T) {
	f := newFake()
	big := strings.Repeat("v", 512<<10)
	f.data["big"] = []byte(big)
	s, addr := startServer(t, Config{WriteTimeout: 200 * time.Millisecond}, f)
	c := dial(t, addr)
	req := encode("GET", "big")
	done := make(chan struct{})
	go func() { // writes until the server gives up on us
		defer close(done)
		for {
			if _, err := c.nc.Write(req); err != nil {
				return
			}
		}
	}()
	mtestutil.Eventually(t, 10*time.Second, "slow reader dropped", func() (bool, string) {
		st := s.Stats()
		return st.ConnsAccepted == 1 && st.ConnsOpen == 0 && st.WriteTimeouts == 1, fmt.Sprintf("%+v", st)
	})
	_ = c.nc.Close()
	<-done
}

func TestMaxConns(t *testing.T) {
	s, addr := startServer(t, Config{MaxConns: 2}, newFake())
	a, b := dial(t, addr), dial(t, addr)
	a.do("PING")
	b.do("PING")
	c := dial(t, addr)
	if got := c.read(); got != errReply("ERR max number of clients reached") {
		t.Fatalf("third client: %#v", got)
	}
	c.readEOF()
	_ = a.nc.Close()
	mtestutil.Eventually(t, 5*time.Second, "a slot free", func() (bool, string) {
		st := s.Stats()
		return st.ConnsOpen == 1, fmt.Sprintf("%+v", st)
	})
	if got := dial(t, addr).do("PING"); got != status("PONG") {
		t.Fatalf("after a slot freed: %#v", got)
	}
	if st := s.Stats(); st.ConnsRejected != 1 {
		t.Errorf("rejected %d, want 1", st.ConnsRejected)
	}
}

// TestClose checks that Close ends connections with commands in flight
// (their Backend calls see a cancelled context), is idempotent, and makes
// a later Serve return at once.
func TestClose(t *testing.T) {
	f := newFake()
	started := make(chan struct{}, 1)
	f.hook = func(ctx context.Context, op string, key, value []byte) error {
		started <- struct{}{}
		<-ctx.Done() // a replica that never answers
		return ctx.Err()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Config{}, f)
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	c := dial(t, l.Addr().String())
	c.write(encode("GET", "k"))
	<-started
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	c.readEOF()
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(l2); err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	if _, err := net.Dial("tcp", l2.Addr().String()); err == nil {
		t.Error("listener still open after Serve returned")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, addr := startServer(t, Config{Registerer: reg}, newFake())
	c := dial(t, addr)
	c.do("SET", "a", "1")
	c.do("GET", "a")
	c.do("GET", "a")
	c.do("NOPE")
	_ = c.nc.Close()
	mtestutil.Eventually(t, 5*time.Second, "connection closed", func() (bool, string) {
		st := s.Stats()
		return st.ConnsOpen == 0, fmt.Sprintf("%+v", st)
	})
	d := dial(t, addr)
	d.do("GET", "a")
	value := func(name, cmd string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if cmd != "" && m.GetLabel()[0].GetValue() != cmd {
					continue
				}
				if g := m.GetGauge(); g != nil {
					return g.GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
		return -1
	}
	for _, tt := range []struct {
		name, cmd string
		want      float64
	}{
		{"mnemo_resp_connections", "", 1},
		{"mnemo_resp_connections_total", "", 2},
		{"mnemo_resp_commands_total", "get", 3},
		{"mnemo_resp_commands_total", "set", 1},
		{"mnemo_resp_commands_total", "unknown", 1},
		{"mnemo_resp_commands_total", "ping", 0},
		{"mnemo_resp_error_replies_total", "", 1},
	} {
		if got := value(tt.name, tt.cmd); got != tt.want {
			t.Errorf("%s{cmd=%q} = %v, want %v", tt.name, tt.cmd, got, tt.want)
		}
	}
	// A second server on the same registry does not fail.
	_, _ = startServer(t, Config{Registerer: reg}, newFake())
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("default config: %v", err)
	}
	err := Config{MaxBulk: -1, MaxArgs: -1, MaxRequest: 10, IdleTimeout: -1, WriteTimeout: -time.Second}.Validate()
	for _, want := range []string{"MaxBulk -1", "MaxArgs -1", "MaxRequest 10", "IdleTimeout -1ns", "WriteTimeout -1s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to mention %q", err, want)
		}
	}
	if err := (Config{MaxBulk: 2 << 20, MaxRequest: 1 << 20}).Validate(); err == nil {
		t.Error("MaxBulk above MaxRequest accepted")
	}
	c := Config{MaxBulk: 100 << 20}.withDefaults()
	if c.MaxRequest < c.MaxBulk {
		t.Errorf("withDefaults: MaxRequest %d below MaxBulk %d", c.MaxRequest, c.MaxBulk)
	}
}
