package node

import (
	"sync"

	"github.com/mnemo-kv/mnemo/internal/proto"
)

// putCombiner coordinates concurrent single puts together, as PutMany does
// for a pipeline: while maxInflight batches are being written, puts that
// arrive from other connections queue, and the next batch takes them all.
// Fifty redis-benchmark clients at -P 1 each send one SET and wait, so a
// node sees a steady stream of lone puts; coordinated one by one each costs
// a Pebble commit, a frame per replica, a merge and a commit there and a
// reply frame, and together those cost about half of a replicated SET's CPU
// (SET -P 16, where the pipeline already batches, took 0.038 ms of CPU per
// SET against 0.059 at -P 1).
//
// No goroutine is added and a lone put waits for nothing: a put that finds
// fewer than maxInflight batches running writes itself at once, as a batch
// of one. A put that queues is woken either with its result or to lead the
// next batch, which holds it: so every goroutine leads at most the batch
// that answers it, and a batch's leader hands the queue on to the first put
// in it as soon as its own batch is done.
//
// Semantics are PutMany's (docs/design.md): every put is versioned by a
// home replica and acknowledged at W durable copies, with hints for
// replicas that do not answer. A batch is coordinated under the node's
// context, not a caller's: a client that goes away while its put is queued
// must not fail the puts batched with it. Each put still ends within the
// request timeout PutMany applies.
type putCombiner struct {
	n           *Node
	maxInflight int

	mu       sync.Mutex
	queue    []*combinedPut
	inflight int
}

// combinedPut is one put waiting in a putCombiner.
type combinedPut struct {
	req   *proto.PutRequest
	reply *proto.PutReply
	err   error
	// wake is closed when reply and err are set, or when batch is set: the
	// put leads that batch (which holds it) and then has its answer.
	wake  chan struct{}
	batch []*combinedPut
}

// maxCombinedInflight is how many batches of combined puts run at once.
const maxCombinedInflight = 2

var combinedPool = sync.Pool{New: func() any { return &combinedPut{wake: make(chan struct{}, 1)} }}

// put coordinates req, alone or batched with puts of other callers.
func (c *putCombiner) put(req *proto.PutRequest) (*proto.PutReply, error) {
	p := combinedPool.Get().(*combinedPut)
	p.req = req
	c.mu.Lock()
	if c.inflight < c.maxInflight && len(c.queue) == 0 {
		c.inflight++
		c.mu.Unlock()
		p.batch = []*combinedPut{p}
	} else {
		c.queue = append(c.queue, p)
		c.mu.Unlock()
		<-p.wake
	}
	if p.batch != nil {
		c.lead(p.batch)
	}
	reply, err := p.reply, p.err
	*p = combinedPut{wake: p.wake}
	combinedPool.Put(p)
	return reply, err
}

// lead writes batch, answers its puts, and starts the next batch from the
// queue, or gives up its slot when the queue is empty. The leader's own
// answer is set before the others are woken; it reads it after lead.
func (c *putCombiner) lead(batch []*combinedPut) {
	reqs := make([]*proto.PutRequest, len(batch))
	for i, p := range batch {
		reqs[i] = p.req
	}
	c.n.metrics.combinedBatch.Observe(float64(len(batch)))
	replies, errs := c.n.PutMany(c.n.bg, reqs)
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
		return
	}
	next := c.queue
	c.queue = nil
	c.mu.Unlock()
	next[0].batch = next
	next[0].wake <- struct{}{}
}
