package version

import (
	"bytes"
	"fmt"
)

// Visitor receives what WalkEncoded finds in an encoded object, in order:
// the context's length and entries, then the siblings' count and each
// sibling's dot and tombstone flag. Byte slices alias the encoding.
type Visitor interface {
	Context(n int)
	Entry(actor []byte, counter uint64)
	Siblings(n int)
	Sibling(actor []byte, counter uint64, tombstone bool)
}

// WalkEncoded walks an object's encoding (Encode) without decoding it,
// skipping values and timestamps, and allocates nothing for objects of up
// to 8 context entries. It accepts exactly what Decode accepts (bounds,
// canonical context, sorted siblings whose dots the context covers, no
// trailing bytes) and returns an error wrapping ErrMalformed otherwise;
// v may have seen part of the object by then.
func WalkEncoded(encoded []byte, v Visitor) error {
	r := reader{b: encoded}
	if n, err := r.arrayLen(2); err != nil || n != 2 {
		return r.fail("object header")
	}
	n, err := r.arrayLen(2 * MaxVVEntries)
	if err != nil || n%2 != 0 {
		return r.fail("context")
	}
	v.Context(n / 2)
	var stack [8]walkEntry
	ctx := stack[:0]
	for i := 0; i < n/2; i++ {
		a, c, err := r.dot()
		if err != nil {
			return err
		}
		if c == 0 || len(a) == 0 || (i > 0 && bytes.Compare(ctx[i-1].actor, a) >= 0) {
			return fmt.Errorf("%w: context not canonical", ErrMalformed)
		}
		ctx = append(ctx, walkEntry{a, c})
		v.Entry(a, c)
	}
	ns, err := r.arrayLen(MaxSiblings)
	if err != nil {
		return err
	}
	v.Siblings(ns)
	var prevActor []byte
	var prevCounter uint64
	for i := range ns {
		if m, err := r.arrayLen(5); err != nil || m != 5 {
			return r.fail("sibling")
		}
		a, c, err := r.dot()
		if err != nil {
			return err
		}
		if _, err := r.raw(len(r.b), false); err != nil {
			return err
		}
		tomb, err := r.bool()
		if err != nil {
			return err
		}
		if _, err := r.int(); err != nil {
			return err
		}
		if c == 0 || len(a) == 0 || !walkCovers(ctx, a, c) {
			return fmt.Errorf("%w: sibling dot %s:%d outside context", ErrMalformed, a, c)
		}
		if i > 0 {
			if d := bytes.Compare(prevActor, a); d > 0 || d == 0 && prevCounter >= c {
				return fmt.Errorf("%w: siblings not sorted", ErrMalformed)
			}
		}
		prevActor, prevCounter = a, c
		v.Sibling(a, c, tomb)
	}
	if r.off != len(r.b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.b)-r.off)
	}
	return nil
}

// walkEntry is one context entry during WalkEncoded; actor aliases the
// encoding.
type walkEntry struct {
	actor   []byte
	counter uint64
}

// walkCovers reports whether the context (sorted by actor) covers the dot
// (actor, counter), as VV.Covers.
func walkCovers(ctx []walkEntry, actor []byte, counter uint64) bool {
	lo, hi := 0, len(ctx)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch bytes.Compare(ctx[m].actor, actor) {
		case 0:
			return ctx[m].counter >= counter
		case -1:
			lo = m + 1
		default:
			hi = m
		}
	}
	return false
}
