package benchutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendRESPCommand(t *testing.T) {
	got := string(AppendRESPCommand(nil, []byte("DM.PUT"), []byte("bench"), []byte("key:000000000042"), []byte("abc")))
	want := "*4\r\n$6\r\nDM.PUT\r\n$5\r\nbench\r\n$16\r\nkey:000000000042\r\n$3\r\nabc\r\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := string(AppendRESPCommand([]byte("x"), []byte(""))); got != "x*1\r\n$0\r\n\r\n" {
		t.Errorf("empty argument after a prefix: %q", got)
	}
}

func TestReadRESP(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
	}{
		{"+OK\r\n", "OK"},
		{"-READQUORUM read quorum cannot be reached\r\n", RESPError("READQUORUM read quorum cannot be reached")},
		{":42\r\n", int64(42)},
		{"$3\r\na\r\n\r\n", "a\r\n"}, // a bulk string may hold CRLF
		{"$-1\r\n", nil},
		{"*-1\r\n", nil},
		// Olric's CLUSTER.MEMBERS: name, birthdate, coordinator.
		{"*2\r\n*3\r\n$15\r\n127.0.0.1:43201\r\n:17\r\n$4\r\ntrue\r\n*3\r\n$15\r\n127.0.0.1:43202\r\n:18\r\n$5\r\nfalse\r\n",
			[]any{[]any{"127.0.0.1:43201", int64(17), "true"}, []any{"127.0.0.1:43202", int64(18), "false"}}},
	} {
		got, err := ReadRESP(bufio.NewReader(strings.NewReader(tc.in)))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ReadRESP(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"OK\r\n", "+OK\n", "$5\r\nab\r\n", ":x\r\n", "$99999999999\r\n", "*2\r\n+a\r\n"} {
		if v, err := ReadRESP(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("ReadRESP(%q) = %#v, want an error", bad, v)
		}
	}
}

// fakeRESPServer accepts connections on loopback and answers every
// command with +OK, or with an error for the key fail; it records the
// SETs it saw. It stops when the test ends.
func fakeRESPServer(t *testing.T, fail string) (addr string, seen func() map[string]string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex // guards keys
		keys = map[string]string{}
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r, w := bufio.NewReader(c), bufio.NewWriter(c)
				for {
					v, err := ReadRESP(r)
					if err != nil {
						return
					}
					args, _ := v.([]any)
					reply := "+OK\r\n"
					if len(args) == 3 && args[1] == fail {
						reply = "-ERR refused\r\n"
					} else if len(args) == 3 {
						mu.Lock()
						keys[args[1].(string)] = args[2].(string)
						mu.Unlock()
					}
					w.WriteString(reply)
					if r.Buffered() == 0 {
						w.Flush()
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String(), func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		return keys
	}
}

func TestRESPPreload(t *testing.T) {
	addr, seen := fakeRESPServer(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := func(i int) [][]byte {
		return [][]byte{[]byte("SET"), fmt.Appendf(nil, "key:%012d", i), []byte("v")}
	}
	// 1,001 commands over 3 connections pipelining 64: ranges that do not
	// divide evenly, and a last short batch on each.
	if err := RESPPreload(ctx, addr, 1001, 3, 64, cmd); err != nil {
		t.Fatal(err)
	}
	keys := seen()
	if len(keys) != 1001 {
		t.Fatalf("server saw %d keys, want 1001", len(keys))
	}
	for _, k := range []string{"key:000000000000", "key:000000000500", "key:000000001000"} {
		if keys[k] != "v" {
			t.Errorf("%s not written", k)
		}
	}

	addr, _ = fakeRESPServer(t, "key:000000000700")
	err := RESPPreload(ctx, addr, 1001, 3, 64, cmd)
	var re RESPError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "command 700") {
		t.Errorf("an error reply: got %v, want the RESPError of command 700", err)
	}

	if v, err := RESPDo(ctx, addr, "PING"); err != nil || v != "OK" {
		t.Errorf("RESPDo: %v, %v", v, err)
	}
}
