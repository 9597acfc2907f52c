package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mnemo-kv/mnemo/client"
	"github.com/mnemo-kv/mnemo/internal/testutil"
)

// TestDefaultConfigListensOnLoopbackOnly starts a node with nothing but an
// id and a data directory, as a new user would, and checks every socket the
// process listens on (TCP and UDP, read from /proc): each is on loopback, so
// no listener outside this host takes an unauthenticated command (Redis'
// protected mode, for every port). It uses the default ports, 7000 and 7946.
func TestDefaultConfigListensOnLoopbackOnly(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc to list a process's sockets:", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(mnemoBin, "node", "--id", "solo", "--data", filepath.Join(dir, "data"))
	logf, err := os.Create(filepath.Join(dir, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("node log:\n%s", b)
		}
	})
	c, err := client.New("127.0.0.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testutil.Eventually(t, 30*time.Second, "the default node answers on 127.0.0.1:7000", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := c.Ping(ctx)
		return err == nil, fmt.Sprint(err)
	})

	socks := listeningSockets(t, cmd.Process.Pid)
	if len(socks) < 3 { // RPC (TCP), gossip (TCP and UDP)
		t.Fatalf("found %d listening sockets, want at least RPC and gossip's TCP and UDP: %v", len(socks), socks)
	}
	for _, s := range socks {
		if !s.ip.IsLoopback() {
			t.Errorf("the default config listens on %s %s:%d, outside loopback", s.proto, s.ip, s.port)
		}
	}
	t.Logf("listening: %v", socks)
}

type socket struct {
	proto string
	ip    net.IP
	port  int
}

func (s socket) String() string { return fmt.Sprintf("%s %s:%d", s.proto, s.ip, s.port) }

// listeningSockets returns the TCP sockets in LISTEN state and the UDP
// sockets bound by process pid, matched by inode from /proc/PID/fd to
// /proc/PID/net/{tcp,tcp6,udp,udp6}.
func listeningSockets(t *testing.T, pid int) []socket {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []socket
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, proto))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || !inodes[fs[9]] {
				continue
			}
			if strings.HasPrefix(proto, "tcp") && fs[3] != "0A" { // TCP_LISTEN
				continue
			}
			ip, port := parseProcAddr(t, fs[1])
			out = append(out, socket{proto, ip, port})
		}
		f.Close()
	}
	return out
}

// parseProcAddr reads /proc/net's "0100007F:1B58": the address as 32-bit
// words in host (little-endian) order, then the port in hex.
func parseProcAddr(t *testing.T, s string) (net.IP, int) {
	t.Helper()
	hexIP, hexPort, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if !ok || err != nil || len(hexIP)%8 != 0 {
		t.Fatalf("bad /proc/net address %q", s)
	}
	ip := make(net.IP, 0, len(hexIP)/2)
	for i := 0; i < len(hexIP); i += 8 {
		w, err := strconv.ParseUint(hexIP[i:i+8], 16, 32)
		if err != nil {
			t.Fatalf("bad /proc/net address %q", s)
		}
		ip = append(ip, byte(w), byte(w>>8), byte(w>>16), byte(w>>24))
	}
	return ip, int(port)
}
