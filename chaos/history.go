package chaos

import (
	"bufio"
	"encoding/json"
	"os"
	"sync"
	"time"
)

// OpKind names what an operation did.
type OpKind string

// Operation kinds. NB: they appear in history files; only append.
const (
	// OpAdd reads a set key, merges its siblings, adds Element and writes
	// the union back with the read's context.
	OpAdd OpKind = "add"
	// OpWrite reads a register key and writes Value with the read's
	// context, superseding the values in Read.
	OpWrite OpKind = "write"
	// OpPut writes a fresh delete-workload key (no context).
	OpPut OpKind = "put"
	// OpDelete deletes a delete-workload key with a context covering the
	// values in Read.
	OpDelete OpKind = "delete"
)

// Outcome is how an operation ended, in Jepsen's terms.
type Outcome string

// Outcomes.
const (
	// OutcomeOK: acknowledged. The checker holds the store to it.
	OutcomeOK Outcome = "ok"
	// OutcomeFail: certainly not applied (its read failed, so the write
	// was never sent).
	OutcomeFail Outcome = "fail"
	// OutcomeInfo: indeterminate. A write that timed out or missed its
	// quorum may still be on some replicas, and may or may not survive.
	OutcomeInfo Outcome = "info"
)

// Op is one operation of a workload, as the history records it. The worker
// that invoked it owns it until Complete.
type Op struct {
	ID     int64  `json:"id"`
	Worker int    `json:"worker"`
	Kind   OpKind `json:"f"`
	Key    string `json:"key"`
	// Value is the written value (register, delete workload); Element the
	// added element (set).
	Value   string `json:"value,omitempty"`
	Element uint64 `json:"element,omitempty"`
	// Read are the values the operation's read returned (register writes:
	// what the write supersedes; deletes: what the delete covers). Set
	// adds leave it empty: a union supersedes nothing it does not keep.
	Read []string `json:"read,omitempty"`
	// Invoke and Complete are offsets from the start of the workloads.
	Invoke   time.Duration `json:"invoke_ns"`
	Complete time.Duration `json:"complete_ns"`
	Outcome  Outcome       `json:"outcome,omitempty"`
	Err      string        `json:"err,omitempty"`
	// Planted is set when a planted bug changed what the op did.
	Planted bool `json:"planted,omitempty"`
}

// Recorder is the history of a run: every operation with its invocation
// and completion, kept in memory for the checker and appended to a JSON
// lines file as it happens (one "invoke" and one completion line per op).
// It is safe for concurrent use.
type Recorder struct {
	start time.Time
	// mu guards ops, the file writer and next.
	mu struct {
		sync.Mutex
		ops  []*Op
		next int64
		// done counts completed ops by outcome.
		done map[Outcome]int
		f    *os.File
		w    *bufio.Writer
		err  error
	}
}

// NewRecorder starts a history whose times count from start. With a path
// it also writes the history there.
func NewRecorder(start time.Time, path string) (*Recorder, error) {
	r := &Recorder{start: start}
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		r.mu.f, r.mu.w = f, bufio.NewWriterSize(f, 64<<10)
	}
	return r, nil
}

// historyLine is one line of the history file.
type historyLine struct {
	Type string `json:"type"` // invoke, ok, fail or info
	T    string `json:"t"`    // seconds since the start, as text
	*Op
}

func (r *Recorder) writeLocked(typ string, op *Op, at time.Duration) {
	if r.mu.w == nil || r.mu.err != nil {
		return
	}
	b, err := json.Marshal(historyLine{Type: typ, T: seconds(at), Op: op})
	if err == nil {
		b = append(b, '\n')
		_, err = r.mu.w.Write(b)
	}
	if err != nil {
		r.mu.err = err
	}
}

// Invoke records that worker starts an operation and returns it.
func (r *Recorder) Invoke(worker int, kind OpKind, key string) *Op {
	now := time.Since(r.start)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.next++
	op := &Op{ID: r.mu.next, Worker: worker, Kind: kind, Key: key, Invoke: now}
	r.mu.ops = append(r.mu.ops, op)
	// Only the invocation's fields: the worker fills the rest later.
	r.writeLocked("invoke", &Op{ID: op.ID, Worker: worker, Kind: kind, Key: key, Invoke: now}, now)
	return op
}

// Complete records op's outcome; err describes a failure.
func (r *Recorder) Complete(op *Op, outcome Outcome, err error) {
	now := time.Since(r.start)
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Complete, op.Outcome = now, outcome
	if r.mu.done == nil {
		r.mu.done = map[Outcome]int{}
	}
	r.mu.done[outcome]++
	if err != nil {
		op.Err = err.Error()
	}
	r.writeLocked(string(outcome), op, now)
}

// Ops returns the operations so far. Call it once the workers have
// stopped; the ops are then read-only.
func (r *Recorder) Ops() []*Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Op(nil), r.mu.ops...)
}

// Counts returns how many operations completed so far, by outcome.
func (r *Recorder) Counts() (ok, info, fail int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.done[OutcomeOK], r.mu.done[OutcomeInfo], r.mu.done[OutcomeFail]
}

// Close flushes and closes the history file.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.f == nil {
		return r.mu.err
	}
	err := r.mu.w.Flush()
	if cerr := r.mu.f.Close(); err == nil {
		err = cerr
	}
	r.mu.f, r.mu.w = nil, nil
	if r.mu.err != nil {
		return r.mu.err
	}
	return err
}

func seconds(d time.Duration) string {
	return jsonFloat(d.Seconds(), 3)
}
