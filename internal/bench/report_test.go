package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestReportPrint prints a hand-made report and checks the SDK and
// redis-benchmark tables: their headers, a row each, and the aligned
// columns.
func TestReportPrint(t *testing.T) {
	o := DefaultConfig()
	r := &Report{
		Started: time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC), Seconds: 65, Seed: 42,
		Machine:    benchMachine{Cores: 2, LoadAvgStart: "0.10", Go: "go1.26"},
		LoadAvgEnd: "1.50",
		SDK: []PhaseResult{
			{Op: "put", NRW: "3,2,2", Ops: 1000, OpsPerSec: 18159, P50Ms: 3.19, P99Ms: 9.97, P999Ms: 14.27},
			{Op: "get", NRW: "3,2,2", Ops: 2000, OpsPerSec: 25000.4, P50Ms: 2, P99Ms: 5, P999Ms: 8, Errors: 3},
		},
		Redis: []benchRedisRow{{Server: "mnemo", Config: "--sync always", Test: "SET", Pipeline: 1, Requests: 20000, Clients: 50, RPS: 12345, P50Ms: 1.5, P99Ms: 4}},
	}
	var buf bytes.Buffer
	r.print(&buf, o)
	out := buf.String()
	for _, want := range []string{
		"mnemo bench  2026-12-04 03:00:00  seed 42  2 cores  load average 0.10 at start, 1.50 at end  (1m5s)",
		"Go SDK, closed loop: 64 callers, 100-byte values, 100000 keys, nodes --sync always, 10s per phase",
		"redis-benchmark -c 50 -n 100000 -r 100000 -d 100",
		"18159", "14.27", "25000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The SDK table: a header and two rows, columns right-aligned after
	// the first two, so every line of the table is as wide.
	var table []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "op ") || strings.HasPrefix(strings.TrimSpace(l), "put ") || strings.HasPrefix(strings.TrimSpace(l), "get ") {
			table = append(table, l)
		}
	}
	if len(table) != 3 {
		t.Fatalf("SDK table: %d lines, want 3:\n%s", len(table), out)
	}
	for _, l := range table[1:] {
		if len(l) != len(table[0]) {
			t.Errorf("SDK table not aligned:\n%s", strings.Join(table, "\n"))
			break
		}
	}
}

// TestReportJSON pins the JSON names of the report's top-level and SDK
// fields: scripts and the README's figures read them.
func TestReportJSON(t *testing.T) {
	r := &Report{Seed: 7, SDK: []PhaseResult{{Op: "put", NRW: "3,2,2", OpsPerSec: 1}}, Targets: []benchTarget{}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"started", "seconds", "seed", "machine", "load_avg_end", "settings", "sdk", "targets"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	sdk := m["sdk"].([]any)[0].(map[string]any)
	for _, k := range []string{"op", "nrw", "ops", "errors", "ops_per_sec", "p50_ms", "p99_ms", "p999_ms"} {
		if _, ok := sdk[k]; !ok {
			t.Errorf("sdk row lacks %q: %v", k, sdk)
		}
	}
}
