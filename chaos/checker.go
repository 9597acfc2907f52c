package chaos

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Observation is one view of a key after the final heal: the R=N read
// ("quorum") or one home replica's stored copy (its node id). Values are
// the live values (siblings); tombstones are not values.
type Observation struct {
	Where  string
	Values [][]byte
	// Err is a read that failed; such a view cannot be checked.
	Err string
}

// Problem is one violation, or one thing the checker could not check.
type Problem struct {
	// Kind is lost, stale, resurrected, unexpected or unreadable.
	Kind string `json:"kind"`
	Key  string `json:"key"`
	// Value is the value or set element concerned.
	Value string `json:"value,omitempty"`
	// Where lists the views that show it: quorum and/or node ids.
	Where string `json:"where"`
	// Op is the operation whose promise is broken (the acknowledged add,
	// write or delete), or 0.
	Op     int64  `json:"op,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// SetResult is the set workload's check.
type SetResult struct {
	Keys int `json:"keys"`
	// Acked adds must all be in the final sets; Lost are those missing.
	Acked int `json:"acked_adds"`
	Lost  int `json:"lost"`
	// Indeterminate adds (timed out, quorum failed) may or may not be
	// there; Recovered are those that are.
	Indeterminate int `json:"indeterminate_adds"`
	Recovered     int `json:"recovered"`
	// Unexpected elements were never added (or a value did not decode).
	Unexpected int `json:"unexpected"`
}

// RegisterResult is the register workload's check.
type RegisterResult struct {
	Keys  int `json:"keys"`
	Acked int `json:"acked_writes"`
	// Lost: acknowledged writes missing although no write that read them
	// was applied. Stale: values an acknowledged write superseded, back in
	// the final value.
	Lost       int `json:"lost"`
	Stale      int `json:"stale"`
	Unexpected int `json:"unexpected"`
}

// DeleteResult is the delete workload's check.
type DeleteResult struct {
	Keys         int `json:"keys"`
	AckedPuts    int `json:"acked_puts"`
	AckedDeletes int `json:"acked_deletes"`
	// Lost: acknowledged puts missing with no delete of them attempted.
	// Resurrected: values an acknowledged delete covered, live again.
	Lost        int `json:"lost"`
	Resurrected int `json:"resurrected"`
	Unexpected  int `json:"unexpected"`
}

// CheckResult is the checker's verdict on a history and the final reads.
type CheckResult struct {
	Set      SetResult      `json:"set"`
	Register RegisterResult `json:"register"`
	Delete   DeleteResult   `json:"delete"`
	// Lost, Stale, Resurrected and Unexpected total the workloads'.
	Lost        int `json:"lost"`
	Stale       int `json:"stale"`
	Resurrected int `json:"resurrected"`
	Unexpected  int `json:"unexpected"`
	// Unreadable counts views whose read failed (they prove nothing).
	Unreadable int `json:"unreadable"`
	// Problems lists the violations, the first maxProblems of them.
	Problems []Problem `json:"problems,omitempty"`
}

// maxProblems bounds CheckResult.Problems.
const maxProblems = 200

// problems collects violations, each (kind, key, value) once with every
// view that shows it.
type problems struct {
	order []string
	byID  map[string]*Problem
}

func (ps *problems) add(p Problem) bool {
	if ps.byID == nil {
		ps.byID = map[string]*Problem{}
	}
	id := p.Kind + "\x00" + p.Key + "\x00" + p.Value
	if q, ok := ps.byID[id]; ok {
		if !slices.Contains(strings.Split(q.Where, ","), p.Where) {
			q.Where += "," + p.Where
		}
		return false
	}
	ps.byID[id] = &p
	ps.order = append(ps.order, id)
	return true
}

func (ps *problems) list() []Problem {
	var out []Problem
	for _, id := range ps.order[:min(len(ps.order), maxProblems)] {
		out = append(out, *ps.byID[id])
	}
	return out
}

// Check checks the three properties of a run: ops is the history, final
// maps every key the workloads touched to its views after the final heal.
// It is pure. A key the history names but final lacks counts as
// unreadable.
func Check(ops []*Op, final map[string][]Observation) CheckResult {
	var res CheckResult
	var ps problems
	byKey := map[string][]*Op{}
	var keys []string
	for _, op := range ops {
		if _, ok := byKey[op.Key]; !ok {
			keys = append(keys, op.Key)
		}
		byKey[op.Key] = append(byKey[op.Key], op)
	}
	slices.Sort(keys)
	for _, key := range keys {
		kops := byKey[key]
		views := final[key]
		var readable []Observation
		for _, v := range views {
			if v.Err != "" {
				res.Unreadable++
				ps.add(Problem{Kind: "unreadable", Key: key, Where: v.Where, Detail: v.Err})
				continue
			}
			readable = append(readable, v)
		}
		if len(views) == 0 {
			res.Unreadable++
			ps.add(Problem{Kind: "unreadable", Key: key, Where: "-", Detail: "no final read"})
		}
		switch kops[0].Kind {
		case OpAdd:
			checkSet(key, kops, readable, &res.Set, &ps)
		case OpWrite:
			checkRegister(key, kops, readable, &res.Register, &ps)
		case OpPut, OpDelete:
			checkDelete(key, kops, readable, &res.Delete, &ps)
		}
	}
	res.Lost = res.Set.Lost + res.Register.Lost + res.Delete.Lost
	res.Stale = res.Register.Stale
	res.Resurrected = res.Delete.Resurrected
	res.Unexpected = res.Set.Unexpected + res.Register.Unexpected + res.Delete.Unexpected
	res.Problems = ps.list()
	return res
}

// checkSet: every acknowledged add is in every view's union of siblings;
// no element appears that no add sent.
func checkSet(key string, ops []*Op, views []Observation, r *SetResult, ps *problems) {
	r.Keys++
	sent := map[uint64]*Op{}
	for _, op := range ops {
		switch op.Outcome {
		case OutcomeOK:
			r.Acked++
			sent[op.Element] = op
		case OutcomeInfo:
			r.Indeterminate++
			sent[op.Element] = op
		}
	}
	recovered := map[uint64]bool{}
	for _, v := range views {
		union := map[uint64]bool{}
		for _, b := range v.Values {
			elems, err := decodeSet(b)
			if err != nil {
				if ps.add(Problem{Kind: "unexpected", Key: key, Value: fmt.Sprintf("%.40q", b), Where: v.Where, Detail: err.Error()}) {
					r.Unexpected++
				}
				continue
			}
			for _, e := range elems {
				union[e] = true
			}
		}
		for e := range union {
			op, ok := sent[e]
			switch {
			case !ok:
				if ps.add(Problem{Kind: "unexpected", Key: key, Value: strconv.FormatUint(e, 10), Where: v.Where, Detail: "never added"}) {
					r.Unexpected++
				}
			case op.Outcome == OutcomeInfo:
				recovered[e] = true
			}
		}
		for _, op := range ops {
			if op.Outcome == OutcomeOK && !union[op.Element] {
				if ps.add(Problem{Kind: "lost", Key: key, Value: strconv.FormatUint(op.Element, 10), Where: v.Where, Op: op.ID, Detail: "acknowledged add missing from the set"}) {
					r.Lost++
				}
			}
		}
	}
	r.Recovered += len(recovered)
}

// checkRegister: no view holds a value an acknowledged write superseded
// (stale); every acknowledged write's value is in every view unless a
// write that read it was applied (lost); every value was written.
//
// A write supersedes exactly the values its read returned (it writes with
// that read's context). Whether an indeterminate write was applied is
// known when its value was seen: in a view, or by some other read.
func checkRegister(key string, ops []*Op, views []Observation, r *RegisterResult, ps *problems) {
	r.Keys++
	written := map[string]*Op{}
	readBy := map[string][]*Op{}
	seen := map[string]bool{}
	for _, op := range ops {
		if op.Outcome == OutcomeOK {
			r.Acked++
		}
		if op.Outcome != OutcomeFail {
			written[op.Value] = op
		}
		for _, v := range op.Read {
			readBy[v] = append(readBy[v], op)
			seen[v] = true
		}
	}
	for _, v := range views {
		for _, b := range v.Values {
			seen[string(b)] = true
		}
	}
	applied := func(op *Op) bool { return op.Outcome == OutcomeOK || seen[op.Value] }
	for _, v := range views {
		have := map[string]bool{}
		for _, b := range v.Values {
			val := string(b)
			have[val] = true
			if _, ok := written[val]; !ok {
				if ps.add(Problem{Kind: "unexpected", Key: key, Value: val, Where: v.Where, Detail: "never written"}) {
					r.Unexpected++
				}
				continue
			}
			for _, w := range readBy[val] {
				if w.Outcome == OutcomeOK && w.Value != val {
					if ps.add(Problem{Kind: "stale", Key: key, Value: val, Where: v.Where, Op: w.ID,
						Detail: fmt.Sprintf("superseded by acknowledged write %q (op %d)", w.Value, w.ID)}) {
						r.Stale++
					}
					break
				}
			}
		}
		for _, op := range ops {
			if op.Outcome != OutcomeOK || have[op.Value] {
				continue
			}
			excused := slices.ContainsFunc(readBy[op.Value], func(w *Op) bool { return w != op && applied(w) })
			if !excused {
				if ps.add(Problem{Kind: "lost", Key: key, Value: op.Value, Where: v.Where, Op: op.ID, Detail: "acknowledged write missing, and no applied write read it"}) {
					r.Lost++
				}
			}
		}
	}
}

// checkDelete: no view holds a value an acknowledged delete covered
// (resurrected); an acknowledged put is there unless a delete of it was
// attempted; every value was written.
func checkDelete(key string, ops []*Op, views []Observation, r *DeleteResult, ps *problems) {
	r.Keys++
	written := map[string]*Op{}
	var deletes []*Op
	for _, op := range ops {
		switch op.Kind {
		case OpPut:
			if op.Outcome == OutcomeOK {
				r.AckedPuts++
			}
			if op.Outcome != OutcomeFail {
				written[op.Value] = op
			}
		case OpDelete:
			if op.Outcome == OutcomeOK {
				r.AckedDeletes++
			}
			if op.Outcome != OutcomeFail {
				deletes = append(deletes, op)
			}
		}
	}
	for _, v := range views {
		have := map[string]bool{}
		for _, b := range v.Values {
			val := string(b)
			have[val] = true
			if _, ok := written[val]; !ok {
				if ps.add(Problem{Kind: "unexpected", Key: key, Value: val, Where: v.Where, Detail: "never written"}) {
					r.Unexpected++
				}
				continue
			}
			for _, d := range deletes {
				if d.Outcome == OutcomeOK && slices.Contains(d.Read, val) {
					if ps.add(Problem{Kind: "resurrected", Key: key, Value: val, Where: v.Where, Op: d.ID,
						Detail: fmt.Sprintf("deleted by acknowledged op %d", d.ID)}) {
						r.Resurrected++
					}
					break
				}
			}
		}
		for _, op := range ops {
			if op.Kind != OpPut || op.Outcome != OutcomeOK || have[op.Value] {
				continue
			}
			excused := slices.ContainsFunc(deletes, func(d *Op) bool { return slices.Contains(d.Read, op.Value) })
			if !excused {
				if ps.add(Problem{Kind: "lost", Key: key, Value: op.Value, Where: v.Where, Op: op.ID, Detail: "acknowledged put missing, and no delete of it was attempted"}) {
					r.Lost++
				}
			}
		}
	}
}
