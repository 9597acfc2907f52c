package gossip

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"
)

func TestMemberlistLogLevels(t *testing.T) {
	cases := []struct {
		line  string
		level zerolog.Level
		msg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:5\n", zerolog.DebugLevel, "Stream connection from=127.0.0.1:5"},
		{"[INFO] memberlist: Marking n3 as failed, suspect timeout reached (0 peer confirmations)\n", zerolog.InfoLevel, "Marking n3 as failed, suspect timeout reached (0 peer confirmations)"},
		{"[WARN] memberlist: Refuting a dead message (from: n1)", zerolog.WarnLevel, "Refuting a dead message (from: n1)"},
		{"[ERR] memberlist: Push/Pull with n3 failed: dial tcp: connection refused", zerolog.ErrorLevel, "Push/Pull with n3 failed: dial tcp: connection refused"},
		{"[ERR] Failed to shutdown transport: x", zerolog.ErrorLevel, "Failed to shutdown transport: x"},
		{"Err: Could not set the deadline: x", zerolog.InfoLevel, "Err: Could not set the deadline: x"},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		l := newMemberlistLogger(zerolog.New(&buf), "n1")
		l.Print(tc.line)
		var got struct{ Level, Message, Component string }
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("%q: bad log output %q: %v", tc.line, buf.String(), err)
		}
		if got.Level != tc.level.String() || got.Message != tc.msg || got.Component != "memberlist" {
			t.Errorf("%q: logged %+v, want level %s message %q component memberlist", tc.line, got, tc.level, tc.msg)
		}
	}
}
