package resp

import "github.com/prometheus/client_golang/prometheus"

// collector exports a Server's counters to Prometheus. It reads them at
// scrape time from the connections' own counters, so counting a command
// touches no shared cache line.
type collector struct{ s *Server }

var (
	descCommands = prometheus.NewDesc("mnemo_resp_commands_total",
		"Redis-protocol commands processed, by command (unknown: commands mnemo does not serve).", []string{"cmd"}, nil)
	descConns = prometheus.NewDesc("mnemo_resp_connections",
		"Redis-protocol connections open.", nil, nil)
	descConnsTotal = prometheus.NewDesc("mnemo_resp_connections_total",
		"Redis-protocol connections accepted.", nil, nil)
	descRejected = prometheus.NewDesc("mnemo_resp_connections_rejected_total",
		"Redis-protocol connections refused at the connection limit.", nil, nil)
	descProtoErrors = prometheus.NewDesc("mnemo_resp_protocol_errors_total",
		"Malformed or oversized Redis-protocol requests (each closed its connection).", nil, nil)
	descErrorReplies = prometheus.NewDesc("mnemo_resp_error_replies_total",
		"Redis-protocol error replies sent.", nil, nil)
	descAuthFailures = prometheus.NewDesc("mnemo_resp_auth_failures_total",
		"Failed Redis-protocol AUTH and HELLO AUTH: wrong password, unknown or disabled user.", nil, nil)
	descDenied = prometheus.NewDesc("mnemo_resp_acl_denied_total",
		"Redis-protocol commands refused: reason command (NOAUTH, or NOPERM for the command) or key (NOPERM for a key).", []string{"reason"}, nil)
)

func (m *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCommands, descConns, descConnsTotal, descRejected, descProtoErrors, descErrorReplies, descAuthFailures, descDenied} {
		ch <- d
	}
}

func (m *collector) Collect(ch chan<- prometheus.Metric) {
	s := m.s
	counts, open := s.commandCounts()
	for i, n := range counts {
		name := "unknown"
		if i < len(commandTable) {
			name = commandTable[i].name
		}
		ch <- prometheus.MustNewConstMetric(descCommands, prometheus.CounterValue, float64(n), name)
	}
	ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(open))
	ch <- prometheus.MustNewConstMetric(descConnsTotal, prometheus.CounterValue, float64(s.stats.connsAccepted.Load()))
	ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(s.stats.connsRejected.Load()))
	ch <- prometheus.MustNewConstMetric(descProtoErrors, prometheus.CounterValue, float64(s.stats.protocolErrors.Load()))
	ch <- prometheus.MustNewConstMetric(descErrorReplies, prometheus.CounterValue, float64(s.stats.errorReplies.Load()))
	ch <- prometheus.MustNewConstMetric(descAuthFailures, prometheus.CounterValue, float64(s.stats.authFailures.Load()))
	ch <- prometheus.MustNewConstMetric(descDenied, prometheus.CounterValue, float64(s.stats.deniedCommands.Load()), "command")
	ch <- prometheus.MustNewConstMetric(descDenied, prometheus.CounterValue, float64(s.stats.deniedKeys.Load()), "key")
}
