package antientropy

import (
	"context"
	"errors"
	"testing"

	"github.com/mnemo-kv/mnemo/internal/wire"
	"github.com/mnemo-kv/mnemo/ring"
)

// TestCallerMustBeFrom: with Config.Caller set (the node's TLS identity of
// the connection), a roots request whose From names another node than the
// caller is refused; one in the caller's own name is served.
func TestCallerMustBeFrom(t *testing.T) {
	type callerKey struct{}
	c := newCluster(t, clusterOpts{Config: Config{Caller: func(ctx context.Context) (ring.NodeID, bool) {
		id, ok := ctx.Value(callerKey{}).(ring.NodeID)
		return id, ok
	}}}, "a", "b", "c")
	ae := c.node("a").ae
	body := (&rootsRequest{From: "c", Parts: []ring.Partition{0}, Roots: []uint64{0}}).encode()
	ctx := context.WithValue(context.Background(), callerKey{}, ring.NodeID("b"))
	var we *wire.Error
	if _, err := ae.Handle(ctx, KindRoots, body); !errors.As(err, &we) || we.Code != wire.CodeForbidden {
		t.Fatalf("b's connection exchanging as c: %v, want forbidden", err)
	}
	ctx = context.WithValue(context.Background(), callerKey{}, ring.NodeID("c"))
	if _, err := ae.Handle(ctx, KindRoots, body); err != nil {
		t.Fatalf("c exchanging as c: %v", err)
	}
	// No authenticated caller (plaintext, or no TLS): From is trusted.
	if _, err := ae.Handle(context.Background(), KindRoots, body); err != nil {
		t.Fatalf("plaintext roots: %v", err)
	}
}
