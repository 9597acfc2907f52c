package chaos

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Builders of synthetic histories.

func addOp(id int64, key string, elem uint64, out Outcome) *Op {
	return &Op{ID: id, Kind: OpAdd, Key: key, Element: elem, Outcome: out}
}

func writeOp(id int64, key, value string, out Outcome, read ...string) *Op {
	return &Op{ID: id, Kind: OpWrite, Key: key, Value: value, Outcome: out, Read: read}
}

func putOp(id int64, key, value string, out Outcome) *Op {
	return &Op{ID: id, Kind: OpPut, Key: key, Value: value, Outcome: out}
}

func delOp(id int64, key string, out Outcome, covers ...string) *Op {
	return &Op{ID: id, Kind: OpDelete, Key: key, Outcome: out, Read: covers}
}

func setValue(elems ...uint64) []byte { return encodeSet(elems) }

func vals(s ...string) [][]byte {
	var out [][]byte
	for _, v := range s {
		out = append(out, []byte(v))
	}
	return out
}

// same returns the quorum view and two replica views, all holding values.
func same(values ...[]byte) []Observation {
	return []Observation{{Where: "quorum", Values: values}, {Where: "node-1", Values: values}, {Where: "node-2", Values: values}}
}

// counts is what a test expects of a CheckResult.
type counts struct{ lost, stale, resurrected, unexpected, unreadable int }

func got(r CheckResult) counts {
	return counts{r.Lost, r.Stale, r.Resurrected, r.Unexpected, r.Unreadable}
}

func TestCheckSet(t *testing.T) {
	ok, info, fail := OutcomeOK, OutcomeInfo, OutcomeFail
	for _, tc := range []struct {
		name      string
		ops       []*Op
		final     map[string][]Observation
		want      counts
		recovered int
		where     string // of the first problem, when there is one
	}{
		{
			name:  "every acknowledged add present",
			ops:   []*Op{addOp(1, "s", 1, ok), addOp(2, "s", 2, ok)},
			final: map[string][]Observation{"s": same(setValue(1, 2))},
		},
		{
			name:  "an acknowledged add missing is lost",
			ops:   []*Op{addOp(1, "s", 1, ok), addOp(2, "s", 2, ok)},
			final: map[string][]Observation{"s": same(setValue(1))},
			want:  counts{lost: 1},
			where: "quorum,node-1,node-2",
		},
		{
			name: "missing on one replica only is lost there",
			ops:  []*Op{addOp(1, "s", 1, ok), addOp(2, "s", 2, ok)},
			final: map[string][]Observation{"s": {
				{Where: "quorum", Values: [][]byte{setValue(1, 2)}},
				{Where: "node-1", Values: [][]byte{setValue(1, 2)}},
				{Where: "node-3", Values: [][]byte{setValue(2)}},
			}},
			want:  counts{lost: 1},
			where: "node-3",
		},
		{
			name:  "siblings are unioned",
			ops:   []*Op{addOp(1, "s", 1, ok), addOp(2, "s", 2, ok), addOp(3, "s", 3, ok)},
			final: map[string][]Observation{"s": same(setValue(1, 3), setValue(2))},
		},
		{
			name:      "indeterminate adds may be there or not",
			ops:       []*Op{addOp(1, "s", 1, ok), addOp(2, "s", 2, info), addOp(3, "s", 3, info)},
			final:     map[string][]Observation{"s": same(setValue(1, 2))},
			recovered: 1,
		},
		{
			name:  "an element of a failed add is unexpected",
			ops:   []*Op{addOp(1, "s", 1, ok), addOp(2, "s", 2, fail)},
			final: map[string][]Observation{"s": same(setValue(1, 2))},
			want:  counts{unexpected: 1},
		},
		{
			name:  "an element never added is unexpected",
			ops:   []*Op{addOp(1, "s", 1, ok)},
			final: map[string][]Observation{"s": same(setValue(1, 99))},
			want:  counts{unexpected: 1},
		},
		{
			name:  "a value that is not a set is unexpected, the rest still checked",
			ops:   []*Op{addOp(1, "s", 1, ok)},
			final: map[string][]Observation{"s": same([]byte("garbage"), setValue(1))},
			want:  counts{unexpected: 1},
		},
		{
			name:  "a deleted (empty) set loses every acknowledged add",
			ops:   []*Op{addOp(1, "s", 1, ok), addOp(2, "s", 2, ok)},
			final: map[string][]Observation{"s": same()},
			want:  counts{lost: 2},
		},
		{
			name: "a failed view is unreadable, the others checked",
			ops:  []*Op{addOp(1, "s", 1, ok)},
			final: map[string][]Observation{"s": {
				{Where: "quorum", Err: "mnemo: timeout"},
				{Where: "node-1", Values: [][]byte{setValue(1)}},
			}},
			want: counts{unreadable: 1},
		},
		{
			name:  "a key without final reads is unreadable",
			ops:   []*Op{addOp(1, "s", 1, ok)},
			final: map[string][]Observation{},
			want:  counts{unreadable: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(tc.ops, tc.final)
			if got(r) != tc.want {
				t.Fatalf("got %+v, want %+v; problems %+v", got(r), tc.want, r.Problems)
			}
			if r.Set.Recovered != tc.recovered {
				t.Errorf("recovered %d, want %d", r.Set.Recovered, tc.recovered)
			}
			if tc.where != "" && r.Problems[0].Where != tc.where {
				t.Errorf("problem seen on %q, want %q", r.Problems[0].Where, tc.where)
			}
		})
	}
}

func TestCheckRegister(t *testing.T) {
	ok, info, fail := OutcomeOK, OutcomeInfo, OutcomeFail
	for _, tc := range []struct {
		name  string
		ops   []*Op
		final [][]byte
		want  counts
	}{
		{
			name:  "the last write, having superseded the first",
			ops:   []*Op{writeOp(1, "r", "a", ok), writeOp(2, "r", "b", ok, "a")},
			final: vals("b"),
		},
		{
			name:  "an older value next to the write that superseded it is stale",
			ops:   []*Op{writeOp(1, "r", "a", ok), writeOp(2, "r", "b", ok, "a")},
			final: vals("a", "b"),
			want:  counts{stale: 1},
		},
		{
			name:  "an older value alone is stale, and the acknowledged write lost",
			ops:   []*Op{writeOp(1, "r", "a", ok), writeOp(2, "r", "b", ok, "a")},
			final: vals("a"),
			want:  counts{stale: 1, lost: 1},
		},
		{
			// Also what a sloppy read that missed b makes of c: a sibling.
			name:  "concurrent writes that read the same value are siblings",
			ops:   []*Op{writeOp(1, "r", "a", ok), writeOp(2, "r", "b", ok, "a"), writeOp(3, "r", "c", ok, "a")},
			final: vals("b", "c"),
		},
		{
			name:  "an acknowledged write nobody read, missing, is lost",
			ops:   []*Op{writeOp(1, "r", "a", ok), writeOp(2, "r", "b", ok)},
			final: vals("a"),
			want:  counts{lost: 1},
		},
		{
			name:  "superseded by an indeterminate write that was applied",
			ops:   []*Op{writeOp(1, "r", "a", ok), writeOp(2, "r", "b", info, "a")},
			final: vals("b"),
		},
		{
			name: "superseded by an indeterminate write seen only by a later read",
			ops: []*Op{writeOp(1, "r", "a", ok), writeOp(2, "r", "b", info, "a"),
				writeOp(3, "r", "c", ok, "b")},
			final: vals("c"),
		},
		{
			name:  "read by an indeterminate write never seen anywhere: lost",
			ops:   []*Op{writeOp(1, "r", "a", ok), writeOp(2, "r", "b", info, "a")},
			final: vals(),
			want:  counts{lost: 1},
		},
		{
			name:  "read only by a failed write: lost",
			ops:   []*Op{writeOp(1, "r", "a", ok), writeOp(2, "r", "b", fail, "a")},
			final: vals(),
			want:  counts{lost: 1},
		},
		{
			name:  "an indeterminate write alone may be missing",
			ops:   []*Op{writeOp(1, "r", "a", info)},
			final: vals(),
		},
		{
			name:  "a value nobody wrote is unexpected",
			ops:   []*Op{writeOp(1, "r", "a", ok)},
			final: vals("a", "zz"),
			want:  counts{unexpected: 1},
		},
		{
			name:  "the value of a failed write is unexpected",
			ops:   []*Op{writeOp(1, "r", "a", ok), writeOp(2, "r", "b", fail, "a")},
			final: vals("a", "b"),
			want:  counts{unexpected: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(tc.ops, map[string][]Observation{"r": same(tc.final...)})
			if got(r) != tc.want {
				t.Fatalf("got %+v, want %+v; problems %+v", got(r), tc.want, r.Problems)
			}
		})
	}
}

func TestCheckDelete(t *testing.T) {
	ok, info := OutcomeOK, OutcomeInfo
	for _, tc := range []struct {
		name  string
		ops   []*Op
		final [][]byte
		want  counts
	}{
		{
			name:  "deleted and gone",
			ops:   []*Op{putOp(1, "d", "v", ok), delOp(2, "d", ok, "v")},
			final: vals(),
		},
		{
			name:  "an acknowledged delete's value back is resurrected",
			ops:   []*Op{putOp(1, "d", "v", ok), delOp(2, "d", ok, "v")},
			final: vals("v"),
			want:  counts{resurrected: 1},
		},
		{
			name:  "an indeterminate delete may not have happened",
			ops:   []*Op{putOp(1, "d", "v", ok), delOp(2, "d", info, "v")},
			final: vals("v"),
		},
		{
			name:  "an indeterminate delete may have happened",
			ops:   []*Op{putOp(1, "d", "v", ok), delOp(2, "d", info, "v")},
			final: vals(),
		},
		{
			name:  "an acknowledged put never deleted, missing, is lost",
			ops:   []*Op{putOp(1, "d", "v", ok)},
			final: vals(),
			want:  counts{lost: 1},
		},
		{
			name:  "an indeterminate put may be there",
			ops:   []*Op{putOp(1, "d", "v", info)},
			final: vals("v"),
		},
		{
			name:  "a value nobody put is unexpected",
			ops:   []*Op{putOp(1, "d", "v", ok), delOp(2, "d", ok, "v")},
			final: vals("w"),
			want:  counts{unexpected: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(tc.ops, map[string][]Observation{"d": same(tc.final...)})
			if got(r) != tc.want {
				t.Fatalf("got %+v, want %+v; problems %+v", got(r), tc.want, r.Problems)
			}
		})
	}
}

// TestCheckCountsEachProblemOnce: a value lost on every view is one lost
// write, seen in all of them.
func TestCheckCountsEachProblemOnce(t *testing.T) {
	ops := []*Op{addOp(1, "s", 1, OutcomeOK), addOp(2, "s", 2, OutcomeOK), writeOp(3, "r", "a", OutcomeOK)}
	r := Check(ops, map[string][]Observation{"s": same(setValue()), "r": same()})
	if r.Lost != 3 || r.Set.Lost != 2 || r.Register.Lost != 1 || r.Set.Acked != 2 || r.Register.Acked != 1 {
		t.Fatalf("got %+v", r)
	}
	for _, p := range r.Problems {
		if p.Where != "quorum,node-1,node-2" {
			t.Errorf("%+v: want every view named once", p)
		}
	}
}

func TestSetEncoding(t *testing.T) {
	for _, elems := range [][]uint64{nil, {1}, {5, 3, 3, 1 << 40}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}} {
		b := encodeSet(elems)
		back, err := decodeSet(b)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Compact(slices.Sorted(slices.Values(elems)))
		if len(want) == 0 {
			want = nil
		}
		if !reflect.DeepEqual(back, want) {
			t.Errorf("%v: decoded %v", elems, back)
		}
	}
	for _, bad := range [][]byte{nil, {}, {2, 1}, {setEncodingV1, 0x80}} {
		if _, err := decodeSet(bad); err == nil || !strings.HasPrefix(err.Error(), "chaos: ") {
			t.Errorf("decodeSet(%v): %v, want an error", bad, err)
		}
	}
}
