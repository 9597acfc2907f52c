package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is a run's outcome: what was done, what was seen, and the
// verdict. It is written as report.json; Summary prints it.
type Report struct {
	Seed    int64     `json:"seed"`
	Replay  string    `json:"replay"`
	Started time.Time `json:"started"`
	Nodes   int       `json:"nodes"`
	N       int       `json:"n"`
	R       int       `json:"r"`
	W       int       `json:"w"`
	// Conflicts is siblings, or lww for the experiment.
	Conflicts string  `json:"conflicts"`
	Strict    bool    `json:"strict"`
	DurationS float64 `json:"duration_s"`
	// Network says where the nodes run; Partitions whether network faults
	// were played and, when not, why.
	Network    string `json:"network"`
	Partitions string `json:"partitions"`
	// FaultKinds were drawn from (with the seed they give the schedule).
	FaultKinds []FaultKind    `json:"fault_kinds"`
	Faults     []FaultSummary `json:"faults"`
	PlantBugs  []string       `json:"plant_bugs,omitempty"`

	Ops      map[OpKind]*OpCounts `json:"ops"`
	Timeline []Bucket             `json:"timeline"`

	// HealS is when the final heal ended, from the start of the workloads.
	HealS float64 `json:"final_heal_s"`
	// Converged says whether the replicas agreed within ConvergeTimeout,
	// ConvergenceS how long after the final heal.
	Converged            bool    `json:"converged"`
	ConvergenceS         float64 `json:"convergence_s"`
	ConvergenceTargetS   float64 `json:"convergence_target_s"`
	ConvergenceCriterion string  `json:"convergence_criterion"`
	ConvergenceDetail    string  `json:"convergence_detail,omitempty"`
	// Keys is how many keys were checked.
	Keys  int         `json:"keys"`
	Check CheckResult `json:"check"`
	// LWW is the experiment's figure in lww mode.
	LWW *LWWResult `json:"lww,omitempty"`
	// Stats sums the nodes' subsystem counters at the end (hints
	// replayed, read repairs, anti-entropy keys), when they answered.
	Stats map[string]float64 `json:"node_stats,omitempty"`

	// Failures are why the run failed; none means it passed.
	Failures []string `json:"failures"`
	// Notes are things worth knowing that are not failures.
	Notes []string          `json:"notes,omitempty"`
	Files map[string]string `json:"files"`
}

// FaultSummary is one fault in the report.
type FaultSummary struct {
	Kind   FaultKind `json:"kind"`
	What   string    `json:"what"`
	Nodes  []string  `json:"nodes"`
	AtS    float64   `json:"scheduled_s"`
	ForS   float64   `json:"scheduled_for_s"`
	BeganS float64   `json:"began_s"`
	EndedS float64   `json:"ended_s"`
	Played bool      `json:"played"`
	Errors []string  `json:"errors,omitempty"`
}

// OpCounts counts one kind of operation by outcome.
type OpCounts struct {
	OK   int `json:"ok"`
	Info int `json:"indeterminate"`
	Fail int `json:"failed"`
}

// Bucket is one second of the run: operations completed in it.
type Bucket struct {
	T    int `json:"t"`
	OK   int `json:"ok"`
	Info int `json:"indeterminate"`
	Fail int `json:"failed"`
}

// LWWResult is the experiment of Jepsen's Riak test: acknowledged set adds
// that last-write-wins loses.
type LWWResult struct {
	AckedAdds int     `json:"acked_adds"`
	LostAdds  int     `json:"lost_adds"`
	LostPct   float64 `json:"lost_pct"`
	// LostWrites are acknowledged register writes LWW dropped.
	LostWrites int `json:"lost_register_writes"`
}

// Failed reports whether the run found a violation.
func (r *Report) Failed() bool { return len(r.Failures) > 0 }

func jsonFloat(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

func round(v float64, prec int) float64 {
	f, _ := strconv.ParseFloat(jsonFloat(v, prec), 64)
	return f
}

// summarizeOps counts ops by kind and outcome and buckets them by second.
func summarizeOps(ops []*Op) (map[OpKind]*OpCounts, []Bucket) {
	counts := map[OpKind]*OpCounts{}
	var buckets []Bucket
	for _, op := range ops {
		c := counts[op.Kind]
		if c == nil {
			c = &OpCounts{}
			counts[op.Kind] = c
		}
		t := int(op.Complete / time.Second)
		for len(buckets) <= t {
			buckets = append(buckets, Bucket{T: len(buckets)})
		}
		b := &buckets[t]
		switch op.Outcome {
		case OutcomeOK:
			c.OK++
			b.OK++
		case OutcomeInfo:
			c.Info++
			b.Info++
		case OutcomeFail:
			c.Fail++
			b.Fail++
		}
	}
	return counts, buckets
}

func faultSummaries(records []FaultRecord) []FaultSummary {
	var out []FaultSummary
	for _, r := range records {
		var names []string
		for _, n := range r.Nodes {
			names = append(names, fmt.Sprintf("node-%d", n+1))
		}
		out = append(out, FaultSummary{
			Kind: r.Kind, What: r.Fault.String(), Nodes: names,
			AtS: round(r.At.Seconds(), 3), ForS: round(r.For.Seconds(), 3),
			BeganS: round(r.Began.Seconds(), 3), EndedS: round(r.Ended.Seconds(), 3),
			Played: r.Done, Errors: r.Errors,
		})
	}
	return out
}

// writeJSON writes the report to path.
func (r *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Summary prints the report's short form.
func (r *Report) Summary(w io.Writer) {
	verdict := "PASS"
	if r.Failed() {
		verdict = "FAIL"
	}
	p := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %-15s %s\n", label, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(w, "\n== mnemo chaos: %s ==\n", verdict)
	p("seed", "%d   (replay: %s)", r.Seed, r.Replay)
	p("cluster", "%d nodes, N=%d R=%d W=%d, conflicts %s%s; %s", r.Nodes, r.N, r.R, r.W, r.Conflicts, map[bool]string{true: ", strict quorum", false: ""}[r.Strict], r.Network)
	p("partitions", "%s", r.Partitions)
	kinds := map[FaultKind]int{}
	played := 0
	for _, f := range r.Faults {
		if f.Played {
			kinds[f.Kind]++
			played++
		}
	}
	var parts []string
	for _, k := range AllFaults {
		if kinds[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", kinds[k], k))
		}
	}
	if len(parts) == 0 {
		parts = []string{"none"}
	}
	p("faults", "%d played in %s: %s", played, time.Duration(r.DurationS*float64(time.Second)), strings.Join(parts, ", "))
	var ok, info, fail int
	for _, c := range r.Ops {
		ok, info, fail = ok+c.OK, info+c.Info, fail+c.Fail
	}
	p("operations", "%d acknowledged, %d indeterminate, %d failed", ok, info, fail)
	c := r.Check
	p("set", "%d keys, %d acknowledged adds: %d lost; %d of %d indeterminate adds present", c.Set.Keys, c.Set.Acked, c.Set.Lost, c.Set.Recovered, c.Set.Indeterminate)
	p("register", "%d keys, %d acknowledged writes: %d lost, %d stale", c.Register.Keys, c.Register.Acked, c.Register.Lost, c.Register.Stale)
	p("delete", "%d acknowledged deletes: %d resurrected (%d acknowledged puts, %d lost)", c.Delete.AckedDeletes, c.Delete.Resurrected, c.Delete.AckedPuts, c.Delete.Lost)
	p("totals", "lost %d, resurrected %d, stale %d, unexpected %d, unreadable %d", c.Lost, c.Resurrected, c.Stale, c.Unexpected, c.Unreadable)
	if r.Converged {
		p("convergence", "%.1f s after the final heal (%s over %d keys; target %.0f s)", r.ConvergenceS, criterionName(r.ConvergenceCriterion), r.Keys, r.ConvergenceTargetS)
	} else {
		p("convergence", "NOT within %.0f s of the final heal (%s): %s", r.ConvergenceS, criterionName(r.ConvergenceCriterion), r.ConvergenceDetail)
	}
	if r.LWW != nil {
		p("LWW experiment", "last-write-wins lost %d of %d acknowledged set adds (%.1f%%) and %d register writes; an experiment, not a failure",
			r.LWW.LostAdds, r.LWW.AckedAdds, r.LWW.LostPct, r.LWW.LostWrites)
	}
	if len(r.Stats) > 0 {
		var keys []string
		for k := range r.Stats {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var s []string
		for _, k := range keys {
			s = append(s, fmt.Sprintf("%s %.0f", k, r.Stats[k]))
		}
		p("node counters", "%s", strings.Join(s, ", "))
	}
	for _, n := range r.Notes {
		p("note", "%s", n)
	}
	for i, pr := range c.Problems {
		if i == 10 {
			p("", "... %d more in report.json", len(c.Problems)-10)
			break
		}
		p("problem", "%s %s %s on %s: %s", pr.Kind, pr.Key, pr.Value, pr.Where, pr.Detail)
	}
	for _, f := range r.Failures {
		p("FAILED", "%s", f)
	}
	var files []string
	for _, k := range []string{"report", "svg", "history", "logs"} {
		if r.Files[k] != "" {
			files = append(files, r.Files[k])
		}
	}
	p("files", "%s", strings.Join(files, "  "))
}

func criterionName(c string) string {
	switch c {
	case "merkle":
		return "equal Merkle roots on every partition's home replicas"
	case "local":
		return "equal stored copies on every key's home replicas"
	}
	return c
}
