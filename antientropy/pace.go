package antientropy

import (
	"context"
	"runtime"
	"time"

	"github.com/mnemo-kv/mnemo/internal/ratelimit"
)

// pacerBurst is how much work the pacer lets run without a pause after an
// idle period.
const pacerBurst = 20 * time.Millisecond

// pacer keeps anti-entropy's own work on a node (the start-up tree build,
// the scans of differing segments, encoding and merging objects, in both
// roles) from crowding out foreground requests, in two ways:
//
//   - one turn at a time: work runs in turns, and a node runs one turn at
//     once, whatever the number of exchanges and requests in flight, so
//     anti-entropy never holds more than one CPU and the others stay free
//     for foreground requests;
//   - a bounded share: after each turn the goroutine sleeps until the
//     turns of all goroutines fit in share of the elapsed time (a token
//     bucket of nanoseconds of work).
//
// Turns are measured in wall time, not CPU time, on purpose: on a busy
// machine a turn waits for a CPU and takes longer, so anti-entropy backs
// off further exactly when foreground requests need the CPU. Turns are
// short (one partition's build scan, one chunk of segments, one batch of
// merges) and never end while a lock is held: a pause holds nothing but
// the goroutine.
//
// The share applies only while the node serves foreground requests (busy
// reports it): with nobody waiting for the CPU, holding anti-entropy back
// would only delay the repair (a restarted node's tree build is most of
// the time to its equal roots), so idle turns just run one at a time.
//
// --ae-rate bounds the bytes on the network; the pacer bounds the CPU
// those bytes cost. A nil *pacer only yields between turns.
type pacer struct {
	b    *ratelimit.Bucket // nil: unbounded share
	busy func() bool       // nil: always busy
	cpu  chan struct{}     // one token: the turn running
}

// turn is one goroutine's stretch of work between two pauses.
type turn struct {
	start time.Time
	held  bool // the goroutine holds the pacer's token
}

// newPacer returns a pacer for share of one CPU while busy reports
// foreground work (nil: always); share <= 0 leaves the share unbounded
// (turns are still taken one at a time).
func newPacer(share float64, busy func() bool) *pacer {
	p := &pacer{cpu: make(chan struct{}, 1), busy: busy}
	if share > 0 {
		p.b = ratelimit.NewWithBurst(share*float64(time.Second), float64(pacerBurst))
	}
	return p
}

// begin starts a turn: it waits for the running turn to end, or for ctx.
func (p *pacer) begin(ctx context.Context, t *turn) error {
	if p == nil {
		return ctx.Err()
	}
	select {
	case p.cpu <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	t.start, t.held = time.Now(), true
	return nil
}

// end ends a turn, if one is held, and sleeps as long as needed to keep
// the share, or until ctx ends (then it returns ctx's error).
func (p *pacer) end(ctx context.Context, t *turn) error {
	if p == nil {
		runtime.Gosched()
		return ctx.Err()
	}
	if !t.held {
		return nil
	}
	d := time.Since(t.start)
	t.held = false
	<-p.cpu
	if p.b == nil || (p.busy != nil && !p.busy()) {
		runtime.Gosched()
		return ctx.Err()
	}
	return p.b.Wait(ctx, int(d))
}

// pause ends the turn held and begins another: a point where the work
// lets others run (between batches). Without a turn held it only yields.
func (p *pacer) pause(ctx context.Context, t *turn) error {
	if p == nil || !t.held {
		runtime.Gosched()
		return ctx.Err()
	}
	if err := p.end(ctx, t); err != nil {
		return err
	}
	return p.begin(ctx, t)
}
