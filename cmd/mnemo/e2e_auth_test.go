package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/internal/adminauth"
	"github.com/mnemo-kv/mnemo/internal/localcluster"
)

// Test secrets: each is searched for in the node's log at the end.
const (
	e2eDefaultPass = "e2e-default-pass-7f3a"
	e2eReaderPass  = "e2e-reader-pass-91c2"
	e2eWrongPass   = "e2e-wrong-pass-5d0e"
	e2eAdminToken  = "e2e-admin-token-3b8f6c1d2e9a"
	e2eMetricToken = "e2e-metrics-token-a4d7e2f0c915"
)

// hashWithCLI makes a password hash the way an operator does: the
// password on stdin of `mnemo users hash`.
func hashWithCLI(t *testing.T, password string) string {
	t.Helper()
	cmd := exec.Command(mnemoBin, "users", "hash")
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mnemo users hash: %v", err)
	}
	h := strings.TrimSpace(string(out))
	if !strings.HasPrefix(h, "$argon2id$") || strings.Contains(h, password) {
		t.Fatalf("mnemo users hash printed %q", h)
	}
	return h
}

// redisCLIAuth runs redis-cli as user (password through REDISCLI_AUTH,
// not the command line; empty user: no AUTH) and returns its trimmed
// output, whatever its exit code.
func redisCLIAuth(t *testing.T, path, addr, user, pass string, args ...string) string {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	argv := []string{"-h", host, "-p", port}
	if user != "" {
		argv = append(argv, "--user", user)
	}
	cmd := exec.CommandContext(ctxT(t, 20*time.Second), path, append(argv, args...)...)
	if pass != "" {
		cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+pass)
	}
	out, _ := cmd.CombinedOutput()
	return strings.TrimSpace(string(out))
}

// adminGet GETs an admin path with an optional bearer token.
func adminGet(t *testing.T, addr, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t, 20*time.Second), "GET", "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A real mnemo with a users file and admin tokens, driven by the real
// redis-cli and an HTTP client: NOAUTH without a password, WRONGPASS with
// a wrong one, service with the right one, NOPERM for a read-only user's
// SET; every admin route the server lists answers 401 without a token
// (but /healthz), the metrics token opens /metrics only; and the node's
// log holds none of the passwords or tokens.
func TestE2ERESPAuthAndAdminTokens(t *testing.T) {
	rcli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skipf("redis-cli is not on PATH (make test installs it with apt-get install -y redis-tools): %v", err)
	}
	dir := t.TempDir()
	users := filepath.Join(dir, "users.toml")
	usersText := `# RESP users for the e2e test
[users.default]
password-hash = "` + hashWithCLI(t, e2eDefaultPass) + `"
allow = ["all"]

[users.reader]
password-hash = "` + hashWithCLI(t, e2eReaderPass) + `"
allow = ["read"]
keys = ["pub:*"]
`
	adminFile, metricsFile := filepath.Join(dir, "admin.token"), filepath.Join(dir, "metrics.token")
	for path, content := range map[string]string{users: usersText, adminFile: e2eAdminToken + "\n", metricsFile: e2eMetricToken + "\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, _, code := cli(t, "users", "check", users)
	if code != 0 || out != "default\tread,write,admin\nreader\tread\n" {
		t.Fatalf("mnemo users check: exit %d, %q", code, out)
	}

	c := startCluster(t, localcluster.Options{Nodes: 1, RESP: true, HTTP: true,
		Args: []string{"--resp-users", users, "--admin-token-file", adminFile, "--metrics-token-file", metricsFile, "--n", "1", "--r", "1", "--w", "1", "--log-level", "debug"}})
	n := c.Nodes[0]

	// RESP.
	for _, tc := range []struct {
		user, pass string
		args       []string
		want       string
	}{
		{"", "", []string{"SET", "pub:1", "v"}, "NOAUTH Authentication required."},
		{"", "", []string{"PING"}, "NOAUTH Authentication required."},
		// redis-cli reports the failed AUTH, then sends the command anyway.
		{"", e2eWrongPass, []string{"PING"}, "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.\nNOAUTH Authentication required."},
		{"reader", e2eDefaultPass, []string{"GET", "pub:1"}, "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.\nNOAUTH Authentication required."},
		{"", e2eDefaultPass, []string{"SET", "pub:1", "hello"}, "OK"},
		{"default", e2eDefaultPass, []string{"ACL", "WHOAMI"}, "default"},
		{"reader", e2eReaderPass, []string{"GET", "pub:1"}, "hello"},
		{"reader", e2eReaderPass, []string{"ACL", "WHOAMI"}, "reader"},
		{"reader", e2eReaderPass, []string{"SET", "pub:1", "x"}, "NOPERM this user has no permissions to run the 'set' command"},
		{"reader", e2eReaderPass, []string{"GET", "priv:1"}, "NOPERM this user has no permissions to access one of the keys used as arguments"},
		{"", e2eDefaultPass, []string{"GET", "pub:1"}, "hello"},
	} {
		if got := redisCLIAuth(t, rcli, n.RESP, tc.user, tc.pass, tc.args...); got != tc.want {
			t.Errorf("redis-cli as %q %v: %q, want %q", tc.user, tc.args, got, tc.want)
		}
	}
	// HELLO 3 AUTH, as RESP3 clients log in.
	if got := redisCLIAuth(t, rcli, n.RESP, "", "", "HELLO", "3", "AUTH", "reader", e2eReaderPass); !strings.Contains(got, "proto") {
		t.Errorf("HELLO 3 AUTH reader: %q", got)
	}

	// Admin HTTP: the server's own route list, each route refused without
	// a token.
	code, body := adminGet(t, n.HTTP, "/routes", e2eAdminToken)
	var routes []adminauth.Route
	if err := json.Unmarshal([]byte(body), &routes); code != 200 || err != nil || len(routes) < 8 {
		t.Fatalf("/routes with the admin token: %d %v %q", code, err, body)
	}
	for _, r := range routes {
		path := adminauth.ExamplePath(r.Pattern)
		if strings.HasPrefix(path, "/debug/pprof/profile") || strings.HasPrefix(path, "/debug/pprof/trace") {
			path += "?seconds=1"
		}
		want := 401
		if r.Pattern == "GET /healthz" {
			want = 200
		}
		if code, _ := adminGet(t, n.HTTP, path, ""); code != want {
			t.Errorf("%s (%s) without a token: %d, want %d", r.Pattern, path, code, want)
		}
		if code, _ := adminGet(t, n.HTTP, path, e2eAdminToken[:len(e2eAdminToken)-1]); code != want {
			t.Errorf("%s with a wrong token: %d, want %d", r.Pattern, code, want)
		}
	}
	if code, _ := adminGet(t, n.HTTP, "/nosuchroute", ""); code != 401 {
		t.Errorf("an unknown path without a token: %d, want 401", code)
	}
	code, body = adminGet(t, n.HTTP, "/metrics", e2eMetricToken)
	if code != 200 || !strings.Contains(body, "mnemo_resp_auth_failures_total 2") || !strings.Contains(body, "mnemo_admin_auth_failures_total") {
		t.Errorf("/metrics with the metrics token: %d; want mnemo_resp_auth_failures_total 2 and mnemo_admin_auth_failures_total in it", code)
	}
	if code, _ := adminGet(t, n.HTTP, "/status", e2eMetricToken); code != 403 {
		t.Errorf("/status with the metrics token: %d, want 403", code)
	}
	if code, _ := adminGet(t, n.HTTP, "/status", e2eAdminToken); code != 200 {
		t.Errorf("/status with the admin token: %d", code)
	}

	// No secret in the log (the node runs at debug level, where failed
	// AUTHs are logged too).
	c.Close()
	logText, err := os.ReadFile(n.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logText), "resp users loaded") || !strings.Contains(string(logText), "authentication failed") {
		t.Fatalf("log has no 'resp users loaded' line: is this the node's log?\n%s", logText)
	}
	for _, secret := range []string{e2eDefaultPass, e2eReaderPass, e2eWrongPass, e2eAdminToken, e2eMetricToken, "$argon2id$"} {
		if strings.Contains(string(logText), secret) {
			t.Errorf("the node's log holds secret %q", secret)
		}
	}
}

// A node refuses to start with a bad users file (naming the file, not
// quoting it), and with a Redis port or an admin port outside loopback
// that would take commands from anyone.
func TestE2EAuthStartupChecks(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "users.toml")
	if err := os.WriteFile(bad, []byte("[users.default]\npassword-hash = \"hunter2-plaintext\"\nallow = [\"all\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rpc, _ := localcluster.FreePort()
	gsp, _ := localcluster.FreePort()
	resp, _ := localcluster.FreePort()
	base := []string{"node", "--id", "n1", "--data", filepath.Join(dir, "d"), "--rpc", rpc, "--gossip", gsp}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"plaintext hash", []string{"--resp", resp, "--resp-users", bad}, "users.toml: user default: password-hash is not an argon2id hash"},
		{"resp outside loopback", []string{"--resp", "0.0.0.0:0"}, "--resp-users: must be set"},
		{"http outside loopback", []string{"--http", "0.0.0.0:0"}, "--admin-token-file: must be set"},
		{"resp with security on", []string{"--resp", resp, "--security", "transitional"}, "--resp-users: must be set with --security transitional"},
		{"short token", []string{"--http", "127.0.0.1:0", "--admin-token-file", bad}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := cli(t, append(base, tc.args...)...)
			if code == 0 {
				t.Fatalf("mnemo node %v started", tc.args)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", stderr, tc.want)
			}
			if strings.Contains(stderr, "hunter2") {
				t.Errorf("stderr %q quotes the file", stderr)
			}
		})
	}
}
