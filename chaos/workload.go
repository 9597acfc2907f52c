package chaos

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/ratelimit"
)

// Set values are encoded as a version byte, then the sorted elements as
// uvarint deltas: a few bytes per element, so a set of thousands stays
// far below the value limit.
const setEncodingV1 = 1

func encodeSet(elems []uint64) []byte {
	s := slices.Clone(elems)
	slices.Sort(s)
	s = slices.Compact(s)
	out := make([]byte, 1, 1+2*len(s))
	out[0] = setEncodingV1
	prev := uint64(0)
	for _, e := range s {
		out = binary.AppendUvarint(out, e-prev)
		prev = e
	}
	return out
}

func decodeSet(b []byte) ([]uint64, error) {
	if len(b) == 0 || b[0] != setEncodingV1 {
		return nil, errors.New("chaos: not a set value")
	}
	var out []uint64
	prev := uint64(0)
	for b = b[1:]; len(b) > 0; {
		d, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("chaos: truncated set value")
		}
		prev += d
		out = append(out, prev)
		b = b[n:]
	}
	return out, nil
}

// kv is the harness's client layer over one SDK client: every workload
// call goes through it with the run's quorum options, and it is where the
// planted bugs live.
type kv struct {
	c    *client.Client
	opts []client.Option
	bugs map[string]bool
	// calls counts the calls subject to each bug; every 10th is planted.
	calls map[string]*atomic.Int64
}

func newKV(c *client.Client, cfg Config) *kv {
	k := &kv{c: c, bugs: map[string]bool{}, calls: map[string]*atomic.Int64{}}
	k.opts = append(k.opts, client.R(cfg.R), client.W(cfg.W), client.N(cfg.N))
	if cfg.Strict {
		k.opts = append(k.opts, client.Strict())
	}
	for _, b := range cfg.PlantBugs {
		k.bugs[b] = true
	}
	for _, b := range allBugs {
		k.calls[b] = new(atomic.Int64)
	}
	return k
}

// planted reports whether this call is one the planted bug changes.
func (k *kv) planted(bug string) bool {
	return k.bugs[bug] && k.calls[bug].Add(1)%10 == 0
}

func (k *kv) get(ctx context.Context, key string) (*client.Result, error) {
	return k.c.Get(ctx, []byte(key), k.opts...)
}

func (k *kv) put(ctx context.Context, key string, value []byte, rctx client.Context) (client.Context, error) {
	opts := k.opts
	if rctx != nil {
		opts = append(slices.Clone(opts), client.WithContext(rctx))
	}
	return k.c.Put(ctx, []byte(key), value, opts...)
}

func (k *kv) del(ctx context.Context, key string, rctx client.Context) error {
	return k.c.Delete(ctx, []byte(key), append(slices.Clone(k.opts), client.WithContext(rctx))...)
}

// outcome classifies a write's error: nil is acknowledged; anything else
// may have reached some replica, so it is indeterminate. (An SDK
// ErrUnavailable after failing to reach any node is certain, but the SDK
// also reports a connection broken mid-call as ErrUnavailable, and the
// checker loses nothing by treating both as indeterminate.)
func outcome(err error) Outcome {
	if err == nil {
		return OutcomeOK
	}
	return OutcomeInfo
}

// workloads runs the workers of all three workloads until stop is closed,
// recording into rec.
type workloads struct {
	cfg     Config
	rec     *Recorder
	clients []*kv
	// limit paces all workers together at Config.Rate operations per
	// second (nil: no limit), evenly: its burst is one operation.
	limit *ratelimit.Bucket
	// nextElement and nextValue make every added element and written value
	// unique in the run.
	nextElement atomic.Uint64
	nextValue   atomic.Uint64
	// delKeys counts the delete workload's keys.
	delKeys atomic.Int64
}

// run starts the workers and returns when stop is done and every
// operation in flight has completed. abort ends calls early (Ctrl-C).
func (w *workloads) run(abort, stop context.Context, seed int64) {
	var wg sync.WaitGroup
	id := 0
	start := func(n int, body func(ctx context.Context, stop context.Context, worker int, k *kv, rng *rand.Rand)) {
		for range n {
			worker := id
			id++
			k := w.clients[worker%len(w.clients)]
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(worker)+1))
			wg.Add(1)
			go func() {
				defer wg.Done()
				body(abort, stop, worker, k, rng)
			}()
		}
	}
	start(w.cfg.SetWorkers, w.setWorker)
	start(w.cfg.RegisterWorkers, w.registerWorker)
	start(w.cfg.DeleteWorkers, w.deleteWorker)
	wg.Wait()
}

// next waits for the rate limit and reports whether the worker should go
// on.
func (w *workloads) next(stop context.Context) bool {
	return stop.Err() == nil && w.limit.Wait(stop, 1) == nil
}

// backoff pauses a worker after an error so that an unavailable cluster is
// not hammered by a tight loop.
func backoff(stop context.Context, rng *rand.Rand) {
	select {
	case <-stop.Done():
	case <-time.After(20*time.Millisecond + time.Duration(rng.IntN(80))*time.Millisecond):
	}
}

// setKey and the others name the workloads' keys.
func setKey(i int) string      { return fmt.Sprintf("set-%d", i) }
func registerKey(i int) string { return fmt.Sprintf("reg-%03d", i) }

// setWorker adds unique elements to shared set keys: read, merge the
// siblings, add, write with the read's context (Jepsen's Riak set test).
func (w *workloads) setWorker(abort context.Context, stop context.Context, worker int, k *kv, rng *rand.Rand) {
	for w.next(stop) {
		key := setKey(rng.IntN(w.cfg.SetKeys))
		elem := w.nextElement.Add(1)
		op := w.rec.Invoke(worker, OpAdd, key)
		op.Element = elem
		ctx, cancel := context.WithTimeout(abort, w.cfg.OpTimeout)
		res, err := k.get(ctx, key)
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			cancel()
			w.rec.Complete(op, OutcomeFail, fmt.Errorf("read: %w", err))
			backoff(stop, rng)
			continue
		}
		if res == nil {
			res = &client.Result{}
		}
		union := []uint64{elem}
		for _, v := range res.Values {
			elems, derr := decodeSet(v)
			if derr != nil {
				// The checker reports the bad value; keep the rest.
				continue
			}
			union = append(union, elems...)
		}
		if k.planted(BugLoseAdd) {
			cancel()
			op.Planted = true
			w.rec.Complete(op, OutcomeOK, nil)
			continue
		}
		_, err = k.put(ctx, key, encodeSet(union), res.Context)
		cancel()
		w.rec.Complete(op, outcome(err), err)
		if err != nil {
			backoff(stop, rng)
		}
	}
}

// registerWorker writes unique values to many keys, each with the context
// of a read of the key, so it supersedes exactly what it read.
func (w *workloads) registerWorker(abort context.Context, stop context.Context, worker int, k *kv, rng *rand.Rand) {
	for w.next(stop) {
		key := registerKey(rng.IntN(w.cfg.RegisterKeys))
		value := fmt.Sprintf("w%d-%d", worker, w.nextValue.Add(1))
		op := w.rec.Invoke(worker, OpWrite, key)
		op.Value = value
		ctx, cancel := context.WithTimeout(abort, w.cfg.OpTimeout)
		res, err := k.get(ctx, key)
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			cancel()
			w.rec.Complete(op, OutcomeFail, fmt.Errorf("read: %w", err))
			backoff(stop, rng)
			continue
		}
		if res == nil {
			res = &client.Result{}
		}
		for _, v := range res.Values {
			op.Read = append(op.Read, string(v))
		}
		rctx := res.Context
		if k.planted(BugDropContext) {
			op.Planted = true
			rctx = nil
		}
		_, err = k.put(ctx, key, []byte(value), rctx)
		cancel()
		w.rec.Complete(op, outcome(err), err)
		if err != nil {
			backoff(stop, rng)
		}
	}
}

// deleteWorker writes a fresh key, then deletes it with a context that
// covers the write: the read's when the read saw it, else the put's own.
func (w *workloads) deleteWorker(abort context.Context, stop context.Context, worker int, k *kv, rng *rand.Rand) {
	for w.next(stop) {
		key := fmt.Sprintf("del-%d-%06d", worker, w.delKeys.Add(1))
		value := fmt.Sprintf("d%d-%d", worker, w.nextValue.Add(1))
		op := w.rec.Invoke(worker, OpPut, key)
		op.Value = value
		ctx, cancel := context.WithTimeout(abort, w.cfg.OpTimeout)
		putCtx, err := k.put(ctx, key, []byte(value), nil)
		cancel()
		w.rec.Complete(op, outcome(err), err)
		if err != nil {
			backoff(stop, rng)
			continue
		}
		if !w.next(stop) {
			return
		}
		del := w.rec.Invoke(worker, OpDelete, key)
		ctx, cancel = context.WithTimeout(abort, w.cfg.OpTimeout)
		res, err := k.get(ctx, key)
		rctx := putCtx
		del.Read = []string{value}
		if err == nil && slices.ContainsFunc(res.Values, func(v []byte) bool { return string(v) == value }) {
			rctx, del.Read = res.Context, nil
			for _, v := range res.Values {
				del.Read = append(del.Read, string(v))
			}
		}
		if k.planted(BugSkipDelete) {
			cancel()
			del.Planted = true
			w.rec.Complete(del, OutcomeOK, nil)
			continue
		}
		err = k.del(ctx, key, rctx)
		cancel()
		w.rec.Complete(del, outcome(err), err)
		if err != nil {
			backoff(stop, rng)
		}
	}
}
