package resp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// batchFake is a fakeBackend that also writes and reads several keys at
// once, and records the size of each SetMany and GetMany call.
type batchFake struct {
	*fakeBackend
	bmu           sync.Mutex
	batches, gets []int
	// fail makes SetMany fail this key.
	fail string
}

func (f *batchFake) GetMany(ctx context.Context, keys [][]byte, q Quorum) ([][]byte, []bool, []error) {
	f.bmu.Lock()
	f.gets = append(f.gets, len(keys))
	f.bmu.Unlock()
	values, found, errs := make([][]byte, len(keys)), make([]bool, len(keys)), make([]error, len(keys))
	for i, k := range keys {
		values[i], found[i], errs[i] = f.Get(ctx, k, q)
	}
	return values, found, errs
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

// TestPipelinedGetsBatched: a pipeline of GETs reaches the Backend as one
// GetMany, after the SETs before it and before the SETs after it, and each
// gets its own key's answer (nil for a missing one).
func TestPipelinedGetsBatched(t *testing.T) {
	be := &batchFake{fakeBackend: newFake()}
	_, addr := startServer(t, Config{}, be)
	c := dial(t, addr)
	var pipe []byte
	pipe = append(pipe, encode("SET", "a", "1")...)
	pipe = append(pipe, encode("SET", "b", "2")...)
	for _, k := range []string{"a", "b", "missing", "a"} {
		pipe = append(pipe, encode("GET", k)...)
	}
	pipe = append(pipe, encode("SET", "a", "3")...)
	pipe = append(pipe, encode("SET", "c", "4")...)
	pipe = append(pipe, encode("GET", "a")...)
	c.write(pipe)
	want := []any{status("OK"), status("OK"), "1", "2", nil, "1", status("OK"), status("OK"), "3"}
	for i, w := range want {
		if got := c.read(); got != w {
			t.Fatalf("reply %d: %v, want %v", i, got, w)
		}
	}
	be.bmu.Lock()
	defer be.bmu.Unlock()
	if len(be.gets) == 0 || be.gets[0] != 4 {
		t.Fatalf("GetMany calls %v, want the 4 GETs together first", be.gets)
	}
}
