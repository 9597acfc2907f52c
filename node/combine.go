package node

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// combiner coordinates concurrent single requests together, as PutMany
// and GetMany do for a pipeline: while maxInflight batches are running,
// requests that arrive from other connections queue, and the next batch
// takes them all. Fifty redis-benchmark clients at -P 1 each send one
// command and wait, so a node sees a steady stream of lone requests;
// coordinated one by one each put costs its own replica frames and its own
// Pebble commit here and on each replica, while a pipeline's batch shares
// them. The RESP port combines SETs: in alternating runs (redis-benchmark
// -c 50 -P 1, 3 nodes) batches averaged 10 SETs and CPU per SET fell
// 6-8%. Tried and not kept (docs/performance.md): GETs, which batched by
// GetMany cost 6% more CPU per read than alone, and SDK puts (64 callers
// over three coordinators), which were no faster combined.
//
// No goroutine is added and a lone request waits for nothing: one that
// finds fewer than maxInflight batches running runs at once, as a batch of
// one. A request that queues is woken either with its result or to lead
// the next batch, which holds it: so every goroutine leads at most the
// batch that answers it, and a batch's leader hands the queue on to the
// first request in it as soon as its own batch is done.
//
// Semantics are those of the batch function (PutMany, GetMany; see
// docs/design.md): every put is versioned by a home replica and
// acknowledged at W durable copies with hints for replicas that do not
// answer, every read answers at R with read repair. A batch runs under the
// node's context, not a caller's: a client that goes away while its
// request is queued must not fail the requests batched with it. Each
// request still ends within the request timeout the batch applies (the
// node's --timeout: RESP requests carry none of their own).
type combiner[Q, R any] struct {
	// run coordinates a batch; its answers are in the order of reqs.
	run func(reqs []Q) ([]R, []error)
	// observe is told each batch's size (a metric).
	observe     func(n int)
	maxInflight int

	pool     sync.Pool // of *combined[Q, R]
	mu       sync.Mutex
	queue    []*combined[Q, R]
	inflight int
}

// combined is one request waiting in a combiner.
type combined[Q, R any] struct {
	req   Q
	reply R
	err   error
	// wake gets a value when reply and err are set, or when batch is set:
	// the request leads that batch (which holds it) and then has its
	// answer.
	wake  chan struct{}
	batch []*combined[Q, R]
}

// maxCombinedInflight is how many batches of a combiner run at once: one
// is written (or read) while the next is forming.
const maxCombinedInflight = 2

func newCombiner[Q, R any](run func([]Q) ([]R, []error), observe func(int)) *combiner[Q, R] {
	c := &combiner[Q, R]{run: run, observe: observe, maxInflight: maxCombinedInflight}
	c.pool.New = func() any { return &combined[Q, R]{wake: make(chan struct{}, 1)} }
	return c
}

// do coordinates req, alone or batched with requests of other callers.
func (c *combiner[Q, R]) do(req Q) (R, error) {
	p := c.pool.Get().(*combined[Q, R])
	p.req = req
	c.mu.Lock()
	// NB: the queue is non-empty only while maxInflight batches run.
	if c.inflight < c.maxInflight && len(c.queue) == 0 {
		c.inflight++
		c.mu.Unlock()
		p.batch = []*combined[Q, R]{p}
	} else {
		c.queue = append(c.queue, p)
		c.mu.Unlock()
		<-p.wake
	}
	if p.batch != nil {
		c.lead(p.batch)
	}
	reply, err := p.reply, p.err
	*p = combined[Q, R]{wake: p.wake}
	c.pool.Put(p)
	return reply, err
}

// lead runs batch, answers its requests, and starts the next batch from
// the queue, or gives up its slot when the queue is empty. The leader
// (batch[0]) has its answer set before the others are woken and reads it
// after lead.
func (c *combiner[Q, R]) lead(batch []*combined[Q, R]) {
	reqs := make([]Q, len(batch))
	for i, p := range batch {
		reqs[i] = p.req
	}
	c.observe(len(batch))
	replies, errs, panicked := c.runSafe(reqs)
	leader := batch[0]
	leader.batch = nil
	for i, p := range batch {
		p.reply, p.err = replies[i], errs[i]
		if p != leader {
			p.wake <- struct{}{}
		}
	}
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.inflight--
		c.mu.Unlock()
		c.repanic(panicked)
		return
	}
	next := c.queue
	c.queue = nil
	c.mu.Unlock()
	next[0].batch = next
	next[0].wake <- struct{}{}
	c.repanic(panicked)
}

// runSafe is run, with a panic (a bug) turned into an error for every
// request of the batch: the requests batched with the leader's must not
// wait forever, nor the combiner keep a slot. The leader panics again
// once the batch is answered (repanic), as a lone request would have.
func (c *combiner[Q, R]) runSafe(reqs []Q) (replies []R, errs []error, panicked any) {
	defer func() {
		if r := recover(); r != nil {
			panicked = fmt.Sprintf("%v\n%s", r, debug.Stack())
			replies, errs = make([]R, len(reqs)), make([]error, len(reqs))
			for i := range errs {
				errs[i] = fmt.Errorf("internal error: %v", r)
			}
		}
	}()
	replies, errs = c.run(reqs)
	if len(replies) != len(reqs) || len(errs) != len(reqs) {
		panic(fmt.Sprintf("combiner: %d replies and %d errors for %d requests", len(replies), len(errs), len(reqs)))
	}
	return replies, errs, nil
}

func (c *combiner[Q, R]) repanic(panicked any) {
	if panicked != nil {
		panic(panicked)
	}
}
