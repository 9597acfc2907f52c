package resp

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests run the real Redis tools against the server with the fake
// Backend. They skip when the tools are not installed; CI installs them.

const installHint = "install them with `apt-get install -y redis-tools` (Debian/Ubuntu) or `brew install redis` (macOS) to run this test"

func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not on PATH: %s", name, installHint)
	}
	return path
}

// runTool runs a tool with a deadline and returns its combined output.
func runTool(t *testing.T, stdin string, path string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", path, args, err, out)
	}
	return string(out)
}

func TestRedisCLI(t *testing.T) {
	cli := lookTool(t, "redis-cli")
	_, addr := startServer(t, Config{}, newFake())
	host, port, _ := net.SplitHostPort(addr)
	run := func(args ...string) string {
		t.Helper()
		return strings.TrimRight(runTool(t, "", cli, append([]string{"-h", host, "-p", port}, args...)...), "\n")
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "PONG"},
		{[]string{"SET", "greeting", "hello world"}, "OK"},
		{[]string{"GET", "greeting"}, "hello world"},
		{[]string{"MSET", "a", "1", "b", "2"}, "OK"},
		{[]string{"MGET", "a", "nope", "b"}, "1\n\n2"},
		{[]string{"EXISTS", "a", "b", "nope"}, "2"},
		{[]string{"DEL", "a", "greeting", "nope"}, "2"},
		{[]string{"GET", "greeting"}, ""},
		{[]string{"MNEMO.QUORUM", "W", "1"}, "OK"},
		{[]string{"CONFIG", "GET", "save"}, "save"}, // and an empty line, trimmed
		{[]string{"SET", "k", "v", "EX", "10"}, "ERR mnemo does not support expiry (EX/PX)"},
	} {
		if got := run(tt.args...); got != tt.want {
			t.Errorf("redis-cli %q: got %q, want %q", tt.args, got, tt.want)
		}
	}
	if info := run("INFO"); !strings.Contains(info, "redis_version:") || !strings.Contains(info, "# Replication") {
		t.Errorf("redis-cli INFO:\n%s", info)
	}
	if got := run("INFO", "keyspace"); !strings.Contains(got, "db0:keys=") {
		t.Errorf("redis-cli INFO keyspace: %q", got)
	}
	// Commands on stdin, one per line.
	if got := runTool(t, "SET x 1\nGET x\nPING\n", cli, "-h", host, "-p", port); got != "OK\n1\nPONG\n" {
		t.Errorf("redis-cli with commands on stdin: %q", got)
	}
	// Mass insertion: --pipe streams raw RESP and ends with an ECHO it
	// waits for, so it checks pipelining and reply order at volume.
	var in strings.Builder
	for i := range 5000 {
		in.Write(encode("SET", "pipe:"+strconv.Itoa(i), strconv.Itoa(i)))
	}
	out := runTool(t, in.String(), cli, "-h", host, "-p", port, "--pipe")
	if !strings.Contains(out, "errors: 0, replies: 5000") {
		t.Errorf("redis-cli --pipe: %s", out)
	}
	if got := run("GET", "pipe:4999"); got != "4999" {
		t.Errorf("after --pipe: GET pipe:4999 = %q", got)
	}
}

// benchLine matches redis-benchmark -q's summary lines.
var benchLine = regexp.MustCompile(`(SET|GET): ([0-9.]+) requests per second`)

// runBenchmark runs redis-benchmark -q against addr and returns its
// requests per second by test.
func runBenchmark(t *testing.T, path, addr string, args ...string) map[string]float64 {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	out := runTool(t, "", path, append([]string{"-h", host, "-p", port, "-q"}, args...)...)
	for _, bad := range []string{"ERR", "Error", "WARNING"} {
		if strings.Contains(out, bad) {
			t.Errorf("redis-benchmark %q reported %q:\n%s", args, bad, out)
		}
	}
	rps := map[string]float64{}
	for _, m := range benchLine.FindAllStringSubmatch(out, -1) {
		rps[m[1]], _ = strconv.ParseFloat(m[2], 64)
	}
	return rps
}

// TestRedisBenchmark runs redis-benchmark -t set,get with 50 clients,
// without and with -P 16, against the fake Backend: the ceiling the real
// node can reach. MNEMO_RESP_BENCH_N sets the request count (default
// 20000); MNEMO_RESP_BENCH_FULL=1 adds random keys (-r), a Backend with a
// 100µs round trip, and sequential pipelines (PipelineConcurrency 1).
func TestRedisBenchmark(t *testing.T) {
	bench := lookTool(t, "redis-benchmark")
	n := "20000"
	if v := os.Getenv("MNEMO_RESP_BENCH_N"); v != "" {
		n = v
	}
	type setup struct {
		name    string
		latency time.Duration
		conc    int
		extra   []string
	}
	setups := []setup{{name: "fake"}}
	if os.Getenv("MNEMO_RESP_BENCH_FULL") != "" {
		setups = append(setups,
			setup{name: "fake random keys", extra: []string{"-r", "100000"}},
			setup{name: "fake conc=1", conc: 1, extra: []string{"-r", "100000"}},
			setup{name: "fake 100us", latency: 100 * time.Microsecond, extra: []string{"-r", "100000"}},
			setup{name: "fake 100us conc=1", latency: 100 * time.Microsecond, conc: 1, extra: []string{"-r", "100000"}},
		)
	}
	for _, st := range setups {
		f := newFake()
		if st.latency > 0 {
			f.hook = func(ctx context.Context, op string, key, value []byte) error { return wait(ctx, st.latency) }
		}
		s, addr := startServer(t, Config{PipelineConcurrency: st.conc}, f)
		for _, p := range []string{"1", "16"} {
			args := append([]string{"-t", "set,get", "-n", n, "-c", "50", "-P", p}, st.extra...)
			rps := runBenchmark(t, bench, addr, args...)
			if rps["SET"] == 0 || rps["GET"] == 0 {
				t.Fatalf("redis-benchmark %q: no results: %v", args, rps)
			}
			t.Logf("%-18s -c 50 -P %-2s %v: SET %8.0f req/s  GET %8.0f req/s", st.name, p, st.extra, rps["SET"], rps["GET"])
		}
		if stats := s.Stats(); stats.ErrorReplies != 0 || stats.ProtocolErrors != 0 {
			t.Errorf("%s: server stats %+v", st.name, stats)
		}
	}
}
