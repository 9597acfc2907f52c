package gossip

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// step is one memberlist notification and the event gossip must derive.
type step struct {
	obs   observation
	addr  string
	boot  uint64 // 0: the meta did not decode
	meta  string
	leave bool // the envelope's leaving flag
	want  string
}

// TestObserve checks the rejoin rules of Events, one story per case.
// Reference: docs/design.md "Membership and liveness"; Dynamo 4.8.
func TestObserve(t *testing.T) {
	const a1, a2 = "10.0.0.1:7946", "10.0.0.2:7946"
	cases := map[string][]step{
		"first sight is alive, then dead, then rejoined": {
			{obs: obsJoin, addr: a1, boot: 1, want: "alive alive"},
			{obs: obsLeave, addr: a1, want: "dead dead"},
			{obs: obsLeave, addr: a1, want: ""}, // already dead
			{obs: obsJoin, addr: a1, boot: 2, want: "rejoined alive"},
		},
		"paused process declared dead and refuting keeps its boot id": {
			{obs: obsJoin, addr: a1, boot: 1, want: "alive alive"},
			{obs: obsLeave, addr: a1, want: "dead dead"},
			{obs: obsJoin, addr: a1, boot: 1, want: "rejoined alive"},
		},
		"restart faster than detection: boot id changes while alive": {
			{obs: obsJoin, addr: a1, boot: 1, meta: "m", want: "alive alive"},
			{obs: obsUpdate, addr: a1, boot: 2, meta: "m", want: "rejoined alive"},
			{obs: obsUpdate, addr: a1, boot: 2, meta: "m", want: ""},
		},
		"meta change is an update": {
			{obs: obsJoin, addr: a1, boot: 1, meta: "m1", want: "alive alive"},
			{obs: obsUpdate, addr: a1, boot: 1, meta: "m2", want: "updated alive"},
		},
		"address change while alive is an update": {
			{obs: obsJoin, addr: a1, boot: 1, want: "alive alive"},
			{obs: obsUpdate, addr: a2, boot: 1, want: "updated alive"},
		},
		"leaving flag makes the death a Left": {
			{obs: obsJoin, addr: a1, boot: 1, meta: "m", want: "alive alive"},
			{obs: obsUpdate, addr: a1, boot: 1, meta: "m", leave: true, want: ""},
			{obs: obsLeave, addr: a1, want: "dead left"},
			{obs: obsJoin, addr: a1, boot: 2, meta: "m", want: "rejoined alive"},
			{obs: obsLeave, addr: a1, want: "dead dead"}, // the new process did not leave
		},
		"bad meta is ignored, liveness is not": {
			{obs: obsJoin, addr: a1, boot: 0, want: "alive alive"},
			{obs: obsUpdate, addr: a1, boot: 5, want: ""}, // first known boot id is not a restart
			{obs: obsUpdate, addr: a1, boot: 0, want: ""}, // keeps boot 5
			{obs: obsUpdate, addr: a1, boot: 6, want: "rejoined alive"},
		},
		"leave of an unknown member is ignored": {
			{obs: obsLeave, addr: a1, want: ""},
		},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			tab := newMemberTable()
			now := time.Unix(1000, 0)
			for i, s := range steps {
				now = now.Add(time.Second)
				env := envelope{bootID: s.boot, meta: []byte(s.meta), leaving: s.leave}
				ev, ok := tab.observe(s.obs, "n", s.addr, env, s.boot != 0, now)
				got := ""
				if ok {
					got = fmt.Sprintf("%s %s", ev.kind, ev.member.State)
				}
				if got != s.want {
					t.Fatalf("step %d (%+v): got event %q, want %q", i, s, got, s.want)
				}
				if ok && ev.kind != evUpdated && !ev.member.Since.Equal(now) {
					t.Fatalf("step %d: Since = %v, want %v", i, ev.member.Since, now)
				}
			}
		})
	}
}

func TestMemberTableViews(t *testing.T) {
	tab := newMemberTable()
	now := time.Now()
	for _, id := range []string{"c", "a", "b"} {
		tab.observe(obsJoin, id, id+":1", envelope{bootID: 1, meta: []byte(id)}, true, now)
	}
	tab.observe(obsLeave, "b", "b:1", envelope{}, false, now)

	if got := tab.alive.Load(); got != 2 {
		t.Fatalf("alive = %d, want 2", got)
	}
	if got := fmt.Sprint(tab.aliveIDs()); got != "[a c]" {
		t.Fatalf("aliveIDs = %s, want [a c]", got)
	}
	all := tab.all()
	if len(all) != 3 || all[0].ID != "a" || all[1].ID != "b" || all[1].State != Dead || all[2].ID != "c" {
		t.Fatalf("all = %+v", all)
	}
	// Members are copies.
	all[0].Meta[0] = 'X'
	if m, _ := tab.get("a"); !bytes.Equal(m.Meta, []byte("a")) {
		t.Fatalf("caller's edit leaked into the table: %q", m.Meta)
	}
}
