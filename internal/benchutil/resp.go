package benchutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// AppendRESPCommand appends a command as a RESP array of bulk strings (what
// redis-cli sends) to dst.
func AppendRESPCommand(dst []byte, args ...[]byte) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// RESPError is an error reply ("-ERR ..."), as ReadRESP returns it.
type RESPError string

func (e RESPError) Error() string { return string(e) }

// maxRESPBulk bounds a bulk string or array ReadRESP accepts, so a corrupt
// length cannot make it allocate without limit.
const maxRESPBulk = 64 << 20

// ReadRESP reads one RESP2 value: a simple string or bulk string as
// string, an integer as int64, an array as []any, a null as nil, and an
// error reply as a RESPError value (not as the error result, which is
// kept for I/O and protocol errors).
func ReadRESP(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("benchutil: RESP: malformed line %q", line)
	}
	kind, body := line[0], line[1:len(line)-2]
	switch kind {
	case '+':
		return body, nil
	case '-':
		return RESPError(body), nil
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("benchutil: RESP integer %q: %w", body, err)
		}
		return n, nil
	case '$', '*':
		n, err := strconv.Atoi(body)
		if err != nil || n > maxRESPBulk {
			return nil, fmt.Errorf("benchutil: RESP length %q", body)
		}
		if n < 0 {
			return nil, nil
		}
		if kind == '$' {
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				return nil, err
			}
			if buf[n] != '\r' || buf[n+1] != '\n' {
				return nil, errors.New("benchutil: RESP bulk string without CRLF")
			}
			return string(buf[:n]), nil
		}
		arr := make([]any, 0, min(n, 1024))
		for range n {
			v, err := ReadRESP(r)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	}
	return nil, fmt.Errorf("benchutil: RESP: unknown type %q", kind)
}

// RESPDo sends one command to addr on a new connection and returns the
// reply; an error reply is returned as the error.
func RESPDo(ctx context.Context, addr string, args ...string) (any, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(5 * time.Second))
	}
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	if _, err := c.Write(AppendRESPCommand(nil, bs...)); err != nil {
		return nil, err
	}
	v, err := ReadRESP(bufio.NewReader(c))
	if err != nil {
		return nil, err
	}
	if e, ok := v.(RESPError); ok {
		return nil, e
	}
	return v, nil
}

// RESPPreload sends the commands cmd(0) .. cmd(n-1) to addr over conns
// connections, each pipelining depth commands before it reads their
// replies, and returns when every reply has been read. The first error
// reply, or I/O error, ends the load and is returned with the command's
// index; ctx ending stops it too. cmd is called from several goroutines.
func RESPPreload(ctx context.Context, addr string, n, conns, depth int, cmd func(i int) [][]byte) error {
	conns, depth = max(1, min(conns, n)), max(1, depth)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards first
		first error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		cancel()
	}
	// Connection c sends the indexes [c*n/conns, (c+1)*n/conns).
	for c := range conns {
		from, to := c*n/conns, (c+1)*n/conns
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := respPreloadRange(ctx, addr, from, to, depth, cmd); err != nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func respPreloadRange(ctx context.Context, addr string, from, to, depth int, cmd func(i int) [][]byte) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("benchutil: preload: %w", err)
	}
	defer c.Close()
	// The connection closes when ctx ends, so a blocked read returns.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	r := bufio.NewReaderSize(c, 64<<10)
	var buf []byte
	for i := from; i < to; i += depth {
		end := min(to, i+depth)
		buf = buf[:0]
		for j := i; j < end; j++ {
			buf = AppendRESPCommand(buf, cmd(j)...)
		}
		c.SetDeadline(time.Now().Add(time.Minute))
		if _, err := c.Write(buf); err != nil {
			return fmt.Errorf("benchutil: preload: command %d: %w", i, err)
		}
		for j := i; j < end; j++ {
			v, err := ReadRESP(r)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("benchutil: preload: reply to command %d: %w", j, err)
			}
			if e, ok := v.(RESPError); ok {
				return fmt.Errorf("benchutil: preload: command %d: %w", j, e)
			}
		}
	}
	return nil
}
