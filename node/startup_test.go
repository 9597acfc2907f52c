package node

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
)

// TestStatusDuringStartup asks a node for its status over RPC and HTTP
// from the moment its ports open until New returns; under -race this
// catches hooks or sources set after a server began serving.
func TestStatusDuringStartup(t *testing.T) {
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	cfg := testConfig(t, "n1", nil, nil)
	cfg.RPC, cfg.HTTP = free(), free()
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		answered := 0
		cl, err := client.New(cfg.RPC)
		if err != nil {
			t.Error(err)
			done <- 0
			return
		}
		defer cl.Close()
		for {
			select {
			case <-stop:
				done <- answered
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			if _, err := cl.Status(ctx); err == nil {
				answered++
			}
			cancel()
			if resp, err := http.Get("http://" + cfg.HTTP + "/status"); err == nil {
				resp.Body.Close()
			}
		}
	}()
	nd, err := New(cfg, testLogger(t, cfg.ID))
	close(stop)
	answered := <-done
	if err != nil {
		t.Fatal(err)
	}
	nd.Close()
	t.Logf("%d status calls answered while the node started", answered)
}
