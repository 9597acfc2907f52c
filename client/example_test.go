package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/config"
	"github.com/mnemo-kv/mnemo/node"
)

// startNode runs a one-node cluster in this process for the example.
func startNode() (addr string, stop func()) {
	dir, _ := os.MkdirTemp("", "mnemo-example-")
	cfg := config.Default()
	cfg.ID, cfg.Data = "example", dir
	cfg.RPC, cfg.Gossip = "127.0.0.1:0", "127.0.0.1:0"
	cfg.N, cfg.R, cfg.W = 1, 1, 1
	n, err := node.New(cfg, zerolog.New(io.Discard))
	if err != nil {
		panic(err)
	}
	return n.RPCAddr(), func() { n.Close(); os.RemoveAll(dir) }
}

// A read-modify-write: concurrent writes become siblings, and a write with
// the context of the read that saw them replaces exactly those.
func Example() {
	addr, stop := startNode()
	defer stop()

	c, err := client.New(addr)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	key := []byte("cart:42")
	if _, err := c.Get(ctx, key); errors.Is(err, client.ErrNotFound) {
		fmt.Println("empty cart")
	}
	// Two writers add to the cart without reading first: two siblings.
	c.Put(ctx, key, []byte("apples"))
	c.Put(ctx, key, []byte("pears"))
	res, _ := c.Get(ctx, key)
	fmt.Printf("%d siblings: %s, %s\n", len(res.Values), res.Values[0], res.Values[1])

	// Resolve them with the read's context.
	c.Put(ctx, key, []byte("apples,pears"), client.WithContext(res.Context))
	res, _ = c.Get(ctx, key)
	fmt.Printf("%d value: %s\n", len(res.Values), res.Value())

	c.Delete(ctx, key, client.WithContext(res.Context))
	_, err = c.Get(ctx, key)
	fmt.Println(errors.Is(err, client.ErrNotFound))
	// Output:
	// empty cart
	// 2 siblings: apples, pears
	// 1 value: apples,pears
	// true
}
