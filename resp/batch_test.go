package resp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// batchFake is a fakeBackend that also writes several keys at once, and
// records the size of each SetMany call.
type batchFake struct {
	*fakeBackend
	bmu     sync.Mutex
	batches []int
	// fail makes SetMany fail this key.
	fail string
}

func (f *batchFake) SetMany(ctx context.Context, keys, values [][]byte, q Quorum) []error {
	f.bmu.Lock()
	f.batches = append(f.batches, len(keys))
	f.bmu.Unlock()
	errs := make([]error, len(keys))
	for i := range keys {
		if string(keys[i]) == f.fail {
			errs[i] = errors.New("refused")
			continue
		}
		errs[i] = f.Set(ctx, keys[i], values[i], q)
	}
	return errs
}

// TestPipelinedSetsBatched: a pipeline of plain SETs written in one go
// reaches the Backend as one SetMany; a GET inside the pipeline sees the
// SETs before it, replies keep request order, and a SET with options or a
// failed key is answered on its own.
func TestPipelinedSetsBatched(t *testing.T) {
	be := &batchFake{fakeBackend: newFake(), fail: "bad"}
	_, addr := startServer(t, Config{}, be)
	c := dial(t, addr)

	var pipe []byte
	for i := range 10 {
		pipe = append(pipe, encode("SET", fmt.Sprint("k", i), fmt.Sprint("v", i))...)
	}
	pipe = append(pipe, encode("SET", "k0", "again")...)
	pipe = append(pipe, encode("SET", "bad", "x")...)
	pipe = append(pipe, encode("GET", "k0")...)
	pipe = append(pipe, encode("SET", "k1", "nx", "NX")...)
	pipe = append(pipe, encode("SET", "k2", "z")...)
	c.write(pipe)
	for i := range 11 {
		if got := c.read(); got != status("OK") {
			t.Fatalf("SET %d: %v, want OK", i, got)
		}
	}
	if got := c.read(); got != errReply("ERR refused") {
		t.Fatalf("failed SET: %v, want -ERR refused", got)
	}
	if got := c.read(); got != "again" {
		t.Fatalf("GET k0 after the batch: %v, want the later SET's value", got)
	}
	if got := c.read(); got != nil {
		t.Fatalf("SET NX of an existing key: %v, want nil", got)
	}
	if got := c.read(); got != status("OK") {
		t.Fatalf("last SET: %v", got)
	}
	be.bmu.Lock()
	defer be.bmu.Unlock()
	// The first 12 SETs arrived together; the last one came alone (it runs
	// by itself, through Set).
	if len(be.batches) == 0 || be.batches[0] < 2 {
		t.Fatalf("SetMany calls %v: the pipeline's SETs were not batched", be.batches)
	}
	total := 0
	for _, n := range be.batches {
		total += n
	}
	if total != 12 {
		t.Fatalf("SetMany took %d keys in %v, want the 12 plain SETs before the GET", total, be.batches)
	}
}
