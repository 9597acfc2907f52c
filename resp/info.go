package resp

import (
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// ownInfoSections are the sections the server writes itself. INFO without
// arguments (or with "all", "everything" or "default": mnemo has no
// expensive sections) shows them, then every Backend section.
var ownInfoSections = []string{"Server", "Clients", "Stats"}

// cmdInfo answers INFO [section ...]: the server's Server, Clients and
// Stats sections, with the Backend's fields of the same name appended,
// then the Backend's other sections. Section names match
// case-insensitively; an unknown one yields nothing, as in Redis.
func cmdInfo(c *conn, args [][]byte, b []byte) []byte {
	want := func(string) bool { return true }
	if len(args) > 1 {
		names := make(map[string]bool, len(args)-1)
		all := false
		for _, a := range args[1:] {
			n := strings.ToLower(string(a))
			if n == "all" || n == "everything" || n == "default" {
				all = true
			}
			names[n] = true
		}
		if !all {
			want = func(name string) bool { return names[strings.ToLower(name)] }
		}
	}

	sections := c.s.ownInfo(c)
	// The Backend's sections: fields of a section named like one of ours
	// join it; the rest follow in the Backend's order.
	for _, bs := range c.s.b.Info() {
		merged := false
		for i := range sections {
			if strings.EqualFold(sections[i].Name, bs.Name) {
				sections[i].Fields = append(sections[i].Fields, bs.Fields...)
				merged = true
				break
			}
		}
		if !merged {
			sections = append(sections, bs)
		}
	}

	var sb strings.Builder
	for _, sec := range sections {
		if !want(sec.Name) {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteString("\r\n")
		}
		sb.WriteString("# ")
		sb.WriteString(sec.Name)
		sb.WriteString("\r\n")
		for _, f := range sec.Fields {
			sb.WriteString(f.Key)
			sb.WriteByte(':')
			sb.WriteString(f.Value)
			sb.WriteString("\r\n")
		}
	}
	return appendBulkString(b, sb.String())
}

// ownInfo returns the server's own INFO sections, as seen from c.
func (s *Server) ownInfo(c *conn) []InfoSection {
	counts, open := s.commandCounts()
	var total uint64
	for _, n := range counts {
		total += n
	}
	up := time.Since(s.started)
	port := ""
	if a, ok := c.nc.LocalAddr().(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	return []InfoSection{
		{Name: ownInfoSections[0], Fields: []InfoField{
			{"redis_version", redisVersion},
			{"redis_mode", "standalone"},
			{"mnemo_resp", "1"},
			{"os", runtime.GOOS},
			{"arch_bits", strconv.Itoa(32 << (^uint(0) >> 63))},
			{"multiplexing_api", "go"},
			{"go_version", runtime.Version()},
			{"process_id", strconv.Itoa(os.Getpid())},
			{"tcp_port", port},
			{"uptime_in_seconds", strconv.FormatInt(int64(up.Seconds()), 10)},
			{"uptime_in_days", strconv.FormatInt(int64(up.Hours()/24), 10)},
		}},
		{Name: ownInfoSections[1], Fields: []InfoField{
			{"connected_clients", strconv.Itoa(open)},
			{"maxclients", strconv.Itoa(s.cfg.MaxConns)},
			{"blocked_clients", "0"},
		}},
		{Name: ownInfoSections[2], Fields: []InfoField{
			{"total_connections_received", u(s.stats.connsAccepted.Load())},
			{"total_commands_processed", u(total)},
			{"rejected_connections", u(s.stats.connsRejected.Load())},
			{"total_error_replies", u(s.stats.errorReplies.Load())},
			{"unknown_commands", u(counts[len(commandTable)])},
			{"protocol_errors", u(s.stats.protocolErrors.Load())},
			{"stalled_connections_closed", u(s.stats.stalls.Load())},
			{"write_timeouts", u(s.stats.writeTimeouts.Load())},
			{"acl_access_denied_auth", u(s.stats.authFailures.Load())},
			{"acl_access_denied_cmd", u(s.stats.deniedCommands.Load())},
			{"acl_access_denied_key", u(s.stats.deniedKeys.Load())},
		}},
	}
}
