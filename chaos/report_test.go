package chaos

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	ops := []*Op{
		{Kind: OpAdd, Outcome: OutcomeOK, Complete: 500 * time.Millisecond},
		{Kind: OpAdd, Outcome: OutcomeInfo, Complete: 1500 * time.Millisecond},
		{Kind: OpWrite, Outcome: OutcomeFail, Complete: 2500 * time.Millisecond},
	}
	r := &Report{Seed: 7, Nodes: 5, N: 3, R: 2, W: 2, Conflicts: "siblings", DurationS: 3, HealS: 3.1,
		Converged: true, ConvergenceS: 1.5, ConvergenceTargetS: 30, ConvergenceCriterion: "local",
		Partitions: "OFF, left out of this run: not root <uid 1000> & more", Network: "loopback", Failures: []string{}}
	r.Ops, r.Timeline = summarizeOps(ops)
	r.Faults = faultSummaries([]FaultRecord{
		{Fault: Fault{Kind: FaultKill, At: time.Second, For: time.Second, Nodes: []int{2}}, Began: time.Second, Ended: 2 * time.Second, Done: true},
		{Fault: Fault{Kind: FaultPartition, At: time.Second, For: time.Second, Nodes: []int{0, 1}}, Began: time.Second, Ended: 2 * time.Second, Done: true},
		{Fault: Fault{Kind: FaultPause, At: 5 * time.Second, For: time.Second, Nodes: []int{1}}},
	})
	return r
}

func TestSummarizeOps(t *testing.T) {
	r := sampleReport()
	if c := r.Ops[OpAdd]; c.OK != 1 || c.Info != 1 || c.Fail != 0 {
		t.Errorf("add counts %+v", c)
	}
	if len(r.Timeline) != 3 || r.Timeline[0].OK != 1 || r.Timeline[1].Info != 1 || r.Timeline[2].Fail != 1 {
		t.Errorf("timeline %+v", r.Timeline)
	}
}

// TestSVGIsWellFormed parses the picture as XML, for a passing and a
// failing report, with and without operations.
func TestSVGIsWellFormed(t *testing.T) {
	pass := sampleReport()
	failing := sampleReport()
	failing.Failures = []string{"3 acknowledged writes lost"}
	failing.Converged = false
	empty := &Report{Failures: []string{}}
	for name, r := range map[string]*Report{"pass": pass, "fail": failing, "empty": empty} {
		svg := r.svg()
		d := xml.NewDecoder(strings.NewReader(svg))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: svg is not well-formed: %v\n%s", name, err, svg)
			}
		}
		for _, want := range []string{"seed", "final heal"} {
			if !strings.Contains(svg, want) {
				t.Errorf("%s: svg lacks %q", name, want)
			}
		}
	}
	if svg := pass.svg(); !strings.Contains(svg, "kill node-3") || !strings.Contains(svg, "converged +1.5s") || strings.Contains(svg, "pause node-2") {
		t.Errorf("svg should band the kill and partition, not the unplayed pause, and mark convergence:\n%s", svg)
	}
}

func TestSummary(t *testing.T) {
	r := sampleReport()
	r.LWW = &LWWResult{AckedAdds: 100, LostAdds: 71, LostPct: 71}
	var b bytes.Buffer
	r.Summary(&b)
	for _, want := range []string{"PASS", "seed            7", "partitions      OFF", "71 of 100 acknowledged set adds (71.0%)", "1 kill, 1 partition"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}
