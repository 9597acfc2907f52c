package gossip

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func validLocal() Config {
	c := DefaultLocalConfig()
	c.NodeID = "n1"
	return c
}

func TestDefaultConfigsAreValid(t *testing.T) {
	for name, c := range map[string]Config{"DefaultConfig": DefaultConfig(), "DefaultLocalConfig": DefaultLocalConfig()} {
		c.NodeID = "n1"
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateReportsEveryBadField(t *testing.T) {
	err := Config{Join: []string{"127.0.0.1:1", ""}, Meta: make([]byte, MaxMetaSize+1)}.Validate()
	if err == nil {
		t.Fatal("zero Config validated")
	}
	for _, field := range []string{
		"NodeID", "BindAddr", "Join[1]", "Meta", "ProbeInterval", "ProbeTimeout", "SuspicionMult",
		"SuspicionMaxTimeoutMult", "GossipInterval", "PushPullInterval", "TCPTimeout",
		"GossipToTheDeadTime", "DeadNodeReclaimTime", "JoinRetry",
	} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
	if strings.Contains(err.Error(), "Join[0]") {
		t.Errorf("error names the good Join[0]:\n%v", err)
	}
	if !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("errors.Is(err, ErrMetaTooLarge) = false:\n%v", err)
	}
}

func TestValidateFields(t *testing.T) {
	cases := map[string]struct {
		edit func(*Config)
		want string // substring of the error; "" = valid
	}{
		"max meta fits":            {func(c *Config) { c.Meta = make([]byte, MaxMetaSize) }, ""},
		"meta too large":           {func(c *Config) { c.Meta = make([]byte, 600) }, "gossip: meta too large: 600 bytes, limit 502"},
		"empty bind host":          {func(c *Config) { c.BindAddr = ":7946" }, ""},
		"bind to a name":           {func(c *Config) { c.BindAddr = "localhost:7946" }, "BindAddr: \"localhost\" is not an IP"},
		"bind without port":        {func(c *Config) { c.BindAddr = "127.0.0.1" }, "BindAddr: want IP:port"},
		"bad port":                 {func(c *Config) { c.BindAddr = "127.0.0.1:70000" }, "BindAddr: bad port"},
		"advertise":                {func(c *Config) { c.AdvertiseAddr = "10.1.2.3:0" }, ""},
		"advertise without IP":     {func(c *Config) { c.AdvertiseAddr = ":7946" }, "AdvertiseAddr: no IP"},
		"long node id":             {func(c *Config) { c.NodeID = strings.Repeat("n", 256) }, "NodeID: is 256 bytes"},
		"probe timeout too long":   {func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, "ProbeTimeout: 400ms must be less than ProbeInterval"},
		"negative join retry":      {func(c *Config) { c.JoinRetry = -time.Second }, "JoinRetry: must be positive, got -1s"},
		"push/pull off is refused": {func(c *Config) { c.PushPullInterval = 0 }, "PushPullInterval: must be positive"},
	}
	for name, tc := range cases {
		c := validLocal()
		tc.edit(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: unexpected error: %v", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	c := validLocal()
	c.Meta = make([]byte, 1000)
	g, err := New(c)
	if err == nil {
		g.Close()
		t.Fatal("New accepted 1000 bytes of meta")
	}
	if !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("New: %v, want ErrMetaTooLarge", err)
	}
}
