package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/internal/security"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mnemo.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigFile: a TOML file sets every kind of value: quoted strings with
// a trailing comment and escapes, integers, booleans, floats, sizes and
// durations as strings or numbers, and join as a list.
func TestConfigFile(t *testing.T) {
	p := writeConfig(t, `
# a node
id = "a" # the comment is not part of the id
zone = "rack \"7\""
n = 3
w = 2
hints = false
ae-cpu = 0.25
cache-size = "64MiB"
max-value-size = 2097152
timeout = "750ms"
join = ["127.0.0.1:7946", "127.0.0.1:7947"]
`)
	values, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(values)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ID != "a" || cfg.Zone != `rack "7"` || cfg.N != 3 || cfg.W != 2 || cfg.Hints || cfg.AECPU != 0.25 ||
		cfg.CacheSize != 64<<20 || cfg.MaxValueSize != 2<<20 || cfg.Timeout != 750*time.Millisecond ||
		strings.Join(cfg.Join, ",") != "127.0.0.1:7946,127.0.0.1:7947" {
		t.Fatalf("config from the file: %+v", cfg)
	}
	if cfg.Data != "./data-a" {
		t.Fatalf("data defaults to ./data-<id>, got %q", cfg.Data)
	}
}

// TestConfigFileErrors: a syntax error names the file and line; unknown
// settings, tables and bad values are reported together, one line each.
func TestConfigFileErrors(t *testing.T) {
	p := writeConfig(t, "id = \"a\"\nn = \n")
	if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), p+":2:") {
		t.Fatalf("syntax error: %v, want the file and line 2", err)
	}
	p = writeConfig(t, "nodes = 3\nn = \"three\"\ntimeout = \"soon\"\n[ring]\nq = 1\n")
	values, err := ReadFile(p)
	if err == nil || !strings.Contains(err.Error(), "ring: is a table") {
		t.Fatalf("a table: %v", err)
	}
	_, err = Parse(values)
	for _, want := range []string{"nodes: unknown setting", `--n: "three" is not a whole number`, `--timeout: "soon" is not a duration`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad settings: %v, want %q", err, want)
		}
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Fatal("a missing file read without error")
	}
}

// TestSizes: ParseSize reads what FormatSize writes and the units users
// type; bad sizes are refused with a hint.
func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "64KiB": 64 << 10, "1MiB": 1 << 20, "32 MiB": 32 << 20,
		"2G": 2 << 30, "8kb": 8 << 10, "0": 0, "7B": 7} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.5MiB", "3TB", "12 parsecs"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	for _, n := range []int64{0, 1, 1023, 1 << 10, 3 << 20, 5 << 30, 1<<20 + 1} {
		if got, err := ParseSize(FormatSize(n)); err != nil || got != n {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d, %v", n, FormatSize(n), got, err)
		}
	}
}

// TestSettingTypes: every setting names a type --help can show, and its
// default parses as that setting.
func TestSettingTypes(t *testing.T) {
	types := map[string]bool{"string": true, "int": true, "float": true, "bool": true, "duration": true, "size": true, "strings": true}
	for _, s := range Settings() {
		if !types[s.Type] {
			t.Errorf("%s: type %q", s.Name, s.Type)
		}
		c := Default()
		if err := s.apply(&c, s.Default); err != nil {
			t.Errorf("%s: default %q does not parse: %v", s.Name, s.Default, err)
		}
	}
}

// TestGossipKeyFileSetting: transitional and required need a key file;
// disabled takes one (and gossips plaintext).
func TestGossipKeyFileSetting(t *testing.T) {
	for _, tc := range []struct {
		values map[string]string
		err    string
	}{
		{map[string]string{"id": "a", "security": "transitional"}, "--gossip-key-file: needed with --security transitional"},
		{map[string]string{"id": "a", "security": "required"}, "--gossip-key-file: needed with --security required"},
		{map[string]string{"id": "a", "gossip-key-file": "k"}, ""},
		{map[string]string{"id": "a", "security": "required", "gossip-key-file": "k", "tls-cert": "c", "tls-key": "k", "tls-ca": "ca"}, ""},
	} {
		_, err := Parse(tc.values)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v: %v, want %q", tc.values, err, tc.err)
		}
	}
}

// TestAuthRules: no port outside loopback takes a command from anyone, and
// security on needs RESP users, unless --insecure.
func TestAuthRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]string
		want   string // "" = valid
	}{
		{"loopback open", map[string]string{"resp": "127.0.0.1:6380", "http": "localhost:8001"}, ""},
		{"resp outside loopback", map[string]string{"resp": "0.0.0.0:6380"}, "--resp-users: must be set"},
		{"resp all interfaces", map[string]string{"resp": ":6380"}, "--resp-users: must be set"},
		{"resp outside loopback, users, tls", map[string]string{"security": "required", "tls-cert": "c", "tls-key": "k", "tls-ca": "ca", "gossip-key-file": "g", "resp": "10.0.0.1:6380", "resp-users": "u.toml"}, ""},
		{"resp outside loopback, insecure", map[string]string{"resp": "10.0.0.1:6380", "insecure": "true"}, ""},
		{"resp, security on", map[string]string{"resp": "127.0.0.1:6380", "security": "required"}, "--resp-users: must be set with --security required"},
		{"http outside loopback", map[string]string{"http": "0.0.0.0:8001"}, "--admin-token-file: must be set"},
		{"http outside loopback, token, tls", map[string]string{"security": "required", "tls-cert": "c", "tls-key": "k", "tls-ca": "ca", "gossip-key-file": "g", "http": "0.0.0.0:8001", "admin-token-file": "t"}, ""},
		{"http outside loopback, tls, no token", map[string]string{"security": "required", "tls-cert": "c", "tls-key": "k", "tls-ca": "ca", "gossip-key-file": "g", "http": "0.0.0.0:8001"}, "--admin-token-file: must be set"},
		{"http outside loopback, metrics token only, tls", map[string]string{"security": "required", "tls-cert": "c", "tls-key": "k", "tls-ca": "ca", "gossip-key-file": "g", "http": "0.0.0.0:8001", "metrics-token-file": "t"}, ""},
		{"client certs", map[string]string{"resp-client-certs": "maybe"}, "--resp-client-certs: \"maybe\" must be yes, optional or no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := map[string]string{"id": "a"}
			for k, x := range tc.values {
				v[k] = x
			}
			_, err := Parse(v)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Parse: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Parse: %v, want %q", err, tc.want)
			}
		})
	}
	if Default().RESPClientCerts != ClientCertsOptional {
		t.Fatalf("resp-client-certs defaults to %q", Default().RESPClientCerts)
	}
}

// TestInsecureRule: an open node outside loopback needs --insecure, for
// every port, and says what to set.
func TestInsecureRule(t *testing.T) {
	cfg := Default()
	cfg.ID, cfg.Data = "n1", t.TempDir()
	cfg.RPC, cfg.Gossip, cfg.HTTP, cfg.RESP = "10.1.2.3:7000", "0.0.0.0:7946", ":8000", "127.0.0.1:6380"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("open node on 10.1.2.3 validated")
	}
	for _, want := range []string{"--rpc: 10.1.2.3:7000 is outside loopback", "--gossip: 0.0.0.0:7946", "--http: :8000", "--security required", "--insecure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "--resp") {
		t.Errorf("a loopback RESP address was refused:\n%v", err)
	}
	cfg.Insecure = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("with --insecure: %v", err)
	}
	cfg.Insecure = false
	cfg.Security = security.Required
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--tls-cert: is needed") {
		t.Fatalf("required without files: %v", err)
	}
}

// TestReadFanoutSettings: read-repair-chance is a share in [0, 1] and
// read-retry-after a duration not below 0; out of range values are
// refused with the setting's name, the value and the range.
func TestReadFanoutSettings(t *testing.T) {
	if d := Default(); d.ReadRepairChance != 0.1 || d.ReadRetryAfter != 5*time.Millisecond {
		t.Fatalf("defaults: read-repair-chance %v, read-retry-after %v; want 0.1, 5ms", d.ReadRepairChance, d.ReadRetryAfter)
	}
	for _, tc := range []struct {
		values map[string]string
		want   string // "" = valid
	}{
		{map[string]string{"read-repair-chance": "0"}, ""},
		{map[string]string{"read-repair-chance": "1"}, ""},
		{map[string]string{"read-repair-chance": "0.25", "read-retry-after": "0"}, ""},
		{map[string]string{"read-retry-after": "20ms"}, ""},
		{map[string]string{"read-repair-chance": "1.5"}, "--read-repair-chance: 1.5 must be between 0 and 1"},
		{map[string]string{"read-repair-chance": "-0.1"}, "--read-repair-chance: -0.1 must be between 0 and 1"},
		{map[string]string{"read-repair-chance": "NaN"}, "--read-repair-chance: NaN must be between 0 and 1"},
		{map[string]string{"read-repair-chance": "often"}, `--read-repair-chance: "often" is not a number`},
		{map[string]string{"read-retry-after": "-1ms"}, "--read-retry-after: -1ms must not be negative (0: off)"},
	} {
		v := map[string]string{"id": "a"}
		for k, x := range tc.values {
			v[k] = x
		}
		cfg, err := Parse(v)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.values, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: %v, want %q", tc.values, err, tc.want)
		case tc.want == "" && tc.values["read-retry-after"] == "20ms" && cfg.ReadRetryAfter != 20*time.Millisecond:
			t.Errorf("read-retry-after 20ms parsed as %v", cfg.ReadRetryAfter)
		}
	}
}
