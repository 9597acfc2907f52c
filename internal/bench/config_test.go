package bench

import (
	"strings"
	"testing"
	"time"
)

// TestQuickConfig checks --quick's sizes and that a size flag given on the
// command line keeps its value over them.
func TestQuickConfig(t *testing.T) {
	d := DefaultConfig()
	q := QuickConfig(d, nil)
	if q.Duration != 2*time.Second || q.Keys != 5000 || q.AeKeys != 50000 || q.PeerRounds != 1 || q.Profile {
		t.Errorf("QuickConfig(default): duration %v, keys %d, ae-keys %d, peer-rounds %d, profile %v; want 2s, 5000, 50000, 1, false",
			q.Duration, q.Keys, q.AeKeys, q.PeerRounds, q.Profile)
	}
	if q.Concurrency != d.Concurrency || q.Dir != d.Dir || len(q.Quorums) != len(d.Quorums) {
		t.Errorf("QuickConfig changed a setting it does not shrink: %+v", q)
	}

	o := d
	o.Keys, o.Duration = 777, 7*time.Second
	given := map[string]bool{"keys": true, "duration": true}
	q = QuickConfig(o, func(flag string) bool { return given[flag] })
	if q.Keys != 777 || q.Duration != 7*time.Second {
		t.Errorf("explicit --keys and --duration: got %d and %v, want 777 and 7s", q.Keys, q.Duration)
	}
	if q.OpenDuration != 2*time.Second || q.HintKeys != 5000 {
		t.Errorf("sizes not given: open-duration %v, hint-keys %d, want the quick 2s and 5000", q.OpenDuration, q.HintKeys)
	}
}

// TestConfigValidate checks that one call reports every bad setting.
func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	if err := QuickConfig(DefaultConfig(), nil).validate(); err != nil {
		t.Fatalf("QuickConfig: %v", err)
	}
	c := DefaultConfig()
	c.Only = []string{"sdk", "rejoin", "nosuch"}
	c.Concurrency = 0
	c.Quorums = []string{"3,2,2", "3,4,1"}
	err := c.validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{`--only "nosuch"`, "--concurrency", `--quorum "3,4,1"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "rejoin") {
		t.Errorf("rejoin (an alias of hints) reported as bad: %v", err)
	}
}

func TestParseBenchNRW(t *testing.T) {
	for _, tc := range []struct {
		in      string
		n, r, w int
		ok      bool
	}{
		{"3,2,2", 3, 2, 2, true},
		{"3,1,1", 3, 1, 1, true},
		{"1,1,1", 1, 1, 1, true},
		{"3,4,1", 0, 0, 0, false},
		{"3,0,1", 0, 0, 0, false},
		{"three", 0, 0, 0, false},
	} {
		n, r, w, err := parseBenchNRW(tc.in)
		if (err == nil) != tc.ok || n != tc.n || r != tc.r || w != tc.w {
			t.Errorf("parseBenchNRW(%q) = %d,%d,%d, %v; want %d,%d,%d, ok %v", tc.in, n, r, w, err, tc.n, tc.r, tc.w, tc.ok)
		}
	}
}
