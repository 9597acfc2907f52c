package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// parseAll parses every request in input with the given limits and
// returns them and the error that ended parsing (io.EOF at a boundary).
func parseAll(input []byte, maxBulk, maxArgs, maxRequest int) ([][]string, *parser, error) {
	p := newParser(bufio.NewReaderSize(bytes.NewReader(input), readBufSize), maxBulk, maxArgs, maxRequest)
	var got [][]string
	for {
		args, err := p.next()
		if err != nil {
			return got, p, err
		}
		var cmd []string
		for _, a := range args {
			cmd = append(cmd, string(a))
		}
		got = append(got, cmd)
	}
}

func TestParse(t *testing.T) {
	big := strings.Repeat("x", 200<<10) // larger than the read buffer
	tests := []struct {
		name  string
		in    string
		limit int // MaxBulk; 0: 1 MiB
		want  [][]string
		err   string // protocol error text, or "EOF" / "unexpected EOF"
	}{
		{name: "array", in: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n", want: [][]string{{"SET", "k", "hello"}}, err: "EOF"},
		{name: "binary bulk", in: "*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\x00\xff\r\n", want: [][]string{{"ECHO", "\r\n\x00\xff"}}, err: "EOF"},
		{name: "empty bulk", in: "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", want: [][]string{{"ECHO", ""}}, err: "EOF"},
		{name: "empty array skipped", in: "*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", want: [][]string{{"PING"}}, err: "EOF"},
		{name: "pipelined", in: "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n",
			want: [][]string{{"PING"}, {"GET", "a"}, {"PING"}, {"GET", "b"}}, err: "EOF"},
		{name: "big bulk", in: "*2\r\n$4\r\nECHO\r\n$" + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n", want: [][]string{{"ECHO", big}}, err: "EOF"},
		{name: "bulk at limit", in: "*1\r\n$10\r\n0123456789\r\n", limit: 10, want: [][]string{{"0123456789"}}, err: "EOF"},

		{name: "inline", in: "PING\r\n", want: [][]string{{"PING"}}, err: "EOF"},
		{name: "inline LF only", in: "SET a b\nGET a\n", want: [][]string{{"SET", "a", "b"}, {"GET", "a"}}, err: "EOF"},
		{name: "inline spaces", in: "  SET \t a   b  \r\n", want: [][]string{{"SET", "a", "b"}}, err: "EOF"},
		{name: "inline blank lines skipped", in: "\r\n\r\n   \r\nPING\r\n", want: [][]string{{"PING"}}, err: "EOF"},
		{name: "inline quotes", in: `SET "a b" 'c d' "x\"y\n\x41" 'it\'s' ""` + "\r\n",
			want: [][]string{{"SET", "a b", "c d", "x\"y\nA", "it's", ""}}, err: "EOF"},
		{name: "inline NUL ends line", in: "PING\x00junk\r\n", want: [][]string{{"PING"}}, err: "EOF"},
		{name: "inline unbalanced", in: `SET "a b` + "\r\n", err: "unbalanced quotes in request"},
		{name: "inline quote then text", in: `SET "a"b` + "\r\n", err: "unbalanced quotes in request"},
		{name: "inline too big", in: strings.Repeat("A", readBufSize+10) + "\r\n", err: "too big inline request"},
		{name: "inline then truncated", in: "PING\r\nPIN", want: [][]string{{"PING"}}, err: "unexpected EOF"},

		{name: "negative bulk", in: "*1\r\n$-1\r\n", err: "invalid bulk length"},
		{name: "bulk over limit", in: "*1\r\n$11\r\n0123456789a\r\n", limit: 10, err: "invalid bulk length: 11 bytes exceed the limit of 10"},
		{name: "huge bulk", in: "*1\r\n$999999999999\r\n", err: "invalid bulk length: 999999999999 bytes"},
		{name: "bulk length overflow", in: "*1\r\n$99999999999999999999999\r\n", err: "invalid bulk length"},
		{name: "bulk length junk", in: "*1\r\n$1x\r\n", err: "invalid bulk length"},
		{name: "bulk length plus", in: "*1\r\n$+1\r\n", err: "invalid bulk length"},
		{name: "bulk length leading zero", in: "*1\r\n$01\r\nx\r\n", err: "invalid bulk length"},
		{name: "array too long", in: "*1048577\r\n", err: "invalid multibulk length: 1048577 arguments exceed the limit of 1048576"},
		{name: "array length junk", in: "*x\r\n", err: "invalid multibulk length"},
		{name: "array length empty", in: "*\r\n", err: "invalid multibulk length"},
		{name: "expected dollar", in: "*1\r\n:1\r\n", err: "expected '$', got ':'"},
		{name: "header without CR", in: "*1\n$4\r\nPING\r\n", err: "mbulk count line not terminated by CRLF"},
		{name: "bulk without CRLF", in: "*1\r\n$4\r\nPINGxx", err: "bulk string not terminated by CRLF"},
		{name: "big bulk without CRLF", in: "*1\r\n$" + strconv.Itoa(len(big)) + "\r\n" + big + "xx", err: "bulk string not terminated by CRLF"},
		{name: "too big header", in: "*1\r\n$" + strings.Repeat("1", readBufSize) + "\r\n", err: "too big bulk count string"},

		{name: "truncated header", in: "*2\r\n$3\r\nGET\r\n$1", err: "unexpected EOF"},
		{name: "truncated bulk", in: "*2\r\n$3\r\nGET\r\n$10\r\nabc", err: "unexpected EOF"},
		{name: "truncated big bulk", in: "*1\r\n$200000\r\nabc", err: "unexpected EOF"},
		{name: "truncated array", in: "*3\r\n$3\r\nSET\r\n", err: "unexpected EOF"},
		{name: "truncated CRLF", in: "*1\r\n$4\r\nPING\r", err: "unexpected EOF"},
		{name: "empty input", in: "", err: "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			if limit == 0 {
				limit = 1 << 20
			}
			got, _, err := parseAll([]byte(tt.in), limit, 1<<20, 32<<20)
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("requests = %.200q, want %.200q", got, tt.want)
			}
			var pe *protocolError
			switch {
			case tt.err == "EOF":
				if err != io.EOF {
					t.Errorf("err = %v, want EOF", err)
				}
			case tt.err == "unexpected EOF":
				if err != io.ErrUnexpectedEOF {
					t.Errorf("err = %v, want unexpected EOF", err)
				}
			case !errors.As(err, &pe):
				t.Errorf("err = %v, want protocol error %q", err, tt.err)
			case !strings.HasPrefix(pe.msg, tt.err):
				t.Errorf("protocol error %q, want %q", pe.msg, tt.err)
			}
		})
	}
}

func TestParseRequestLimit(t *testing.T) {
	in := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$600\r\n" + strings.Repeat("v", 600) + "\r\n"
	if _, _, err := parseAll([]byte(in), 1000, 10, 1024); err != io.EOF {
		t.Fatalf("request under the limit: %v", err)
	}
	_, _, err := parseAll([]byte(in+in), 1000, 10, 600)
	var pe *protocolError
	if !errors.As(err, &pe) || pe.msg != "request exceeds the limit of 600 bytes" {
		t.Fatalf("got %v, want the request limit", err)
	}
	_, _, err = parseAll([]byte("a b c d\r\n"), 100, 3, 1000)
	if !errors.As(err, &pe) || !strings.Contains(pe.msg, "more than 3 arguments") {
		t.Fatalf("inline over MaxArgs: got %v", err)
	}
}

// TestParseAllocationBounded checks that what a header announces costs
// nothing until the bytes arrive: 1M arguments or a 1 GiB bulk announced
// in a few bytes allocate at most the read buffer's worth.
func TestParseAllocationBounded(t *testing.T) {
	for _, in := range []string{
		"*1048576\r\n",
		"*1048576\r\n$1\r\na\r\n$1\r\nb\r\n",
		"*1\r\n$1073741824\r\nabc",
		"*2\r\n$4\r\nECHO\r\n$1048576\r\n" + strings.Repeat("z", 1000),
	} {
		p := newParser(bufio.NewReaderSize(strings.NewReader(in), readBufSize), 2<<30, 1<<20, 4<<30)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for {
			if _, err := p.next(); err != nil {
				break
			}
		}
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > 256<<10 {
			t.Errorf("%.40q: allocated %d bytes", in, got)
		}
		if p.allocated > allocBound(len(in)) {
			t.Errorf("%.40q: parser counted %d bytes, bound %d", in, p.allocated, allocBound(len(in)))
		}
	}
}

// allocBound is the most the parser may allocate for n input bytes: one
// chunk and one big-bulk start, plus a constant factor of the input
// (arguments are copied once; the argument list and growth at most double
// it).
func allocBound(n int) int64 {
	return chunkSize + bigBulkStart + 16*int64(n)
}

// FuzzParse feeds arbitrary bytes to the parser: it must never panic,
// every request it returns must respect the limits, allocation must follow
// the input, and every request it returns must parse back the same once
// encoded as RESP.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n",
		"PING\r\n", `SET "a\x41" 'b\'c'` + "\n", "*1\r\n$-1\r\n", "*-1\r\n*0\r\n",
		"*2\r\n$3\r\nGET\r\n$1", "*1048577\r\n", "$5\r\nhello\r\n", "*1\r\n$70000\r\nabc",
	} {
		f.Add([]byte(s))
	}
	const maxBulk, maxArgs, maxRequest = 100 << 10, 1000, 1 << 20
	f.Fuzz(func(t *testing.T, in []byte) {
		got, p, err := parseAll(in, maxBulk, maxArgs, maxRequest)
		if err == nil {
			t.Fatal("parseAll ended without an error")
		}
		if p.allocated > allocBound(len(in)) {
			t.Fatalf("allocated %d bytes for %d input bytes", p.allocated, len(in))
		}
		for _, cmd := range got {
			if len(cmd) == 0 || len(cmd) > maxArgs {
				t.Fatalf("request with %d arguments", len(cmd))
			}
			for _, a := range cmd {
				if len(a) > maxBulk {
					t.Fatalf("argument of %d bytes", len(a))
				}
			}
			again, _, err := parseAll(encode(cmd...), maxBulk, maxArgs, maxRequest+64*maxArgs)
			if err != io.EOF || len(again) != 1 || !slices.Equal(again[0], cmd) {
				t.Fatalf("%q re-encoded parses as %q, %v", cmd, again, err)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	var in []byte
	for i := range 1000 {
		k := "key:" + strconv.Itoa(i)
		in = append(in, encode("SET", k, "xxx")...)
		in = append(in, encode("GET", k)...)
	}
	r := bytes.NewReader(in)
	br := bufio.NewReaderSize(r, readBufSize)
	p := newParser(br, 1<<20, 1<<20, 32<<20)
	b.SetBytes(int64(len(in)) / 2000)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := p.next(); err != nil {
			r.Reset(in)
			br.Reset(r)
			i--
		}
	}
}
