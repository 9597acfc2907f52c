package node

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mnemo-kv/mnemo/internal/wire"
)

// metrics are the node's Prometheus series, on a registry of its own so
// several nodes can run in one process (tests).
type metrics struct {
	reg              *prometheus.Registry
	requests         *prometheus.CounterVec
	errors           *prometheus.CounterVec
	quorumFailures   *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	readRepairs      prometheus.Counter
	combinedBatch    *prometheus.HistogramVec
	tombstonesReaped prometheus.Counter

	// readFanout and readRetries are mnemo_read_fanout_total and
	// mnemo_read_retries_total by reason, resolved once: a read counts
	// without a label lookup.
	readFanout  [nFanoutReasons]prometheus.Counter
	readRetries [nRetryReasons]prometheus.Counter
}

func newMetrics(n *Node) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mnemo_requests_total", Help: "Client requests coordinated by this node, by operation.",
	}, []string{"op"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mnemo_request_errors_total", Help: "Client requests that failed, by operation and error code.",
	}, []string{"op", "code"})
	m.quorumFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mnemo_quorum_failures_total", Help: "Requests that did not reach R or W replicas, by operation.",
	}, []string{"op"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mnemo_request_duration_seconds",
		Help:    "Latency of client requests at the coordinator, by operation.",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18), // 50µs .. 6.5s
	}, []string{"op"})
	m.readRepairs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mnemo_read_repairs_total", Help: "Stale or missing replicas repaired after quorum reads.",
	})
	fanout := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mnemo_read_fanout_total",
		Help: "Quorum reads coordinated by this node, by how many replicas they asked: fanout quorum (R, reason steady) or all, " +
			"reason plan (a stand-in or an unreachable home replica), r (R needs every one), hints (held here for one), " +
			"rejoin (one joined or rejoined lately) or sample (read-repair-chance).",
	}, []string{"fanout", "reason"})
	for r := range nFanoutReasons {
		f := "all"
		if r == fanoutQuorum {
			f = "quorum"
		}
		m.readFanout[r] = fanout.WithLabelValues(f, r.String())
	}
	retries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mnemo_read_retries_total",
		Help: "Replicas a quorum read asked beyond its first ones, by reason: error (one answered with an error) or slow (no answer within read-retry-after).",
	}, []string{"reason"})
	for r := range nRetryReasons {
		m.readRetries[r] = retries.WithLabelValues(r.String())
	}
	f(fanout)
	f(retries)
	m.tombstonesReaped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mnemo_tombstones_reaped_total", Help: "Deleted keys whose tombstones were reaped after the grace.",
	})
	m.combinedBatch = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mnemo_combined_batch_size",
		Help:    "Concurrent single requests (RESP SETs: op put) coordinated together as one batch, by operation.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 8), // 1 .. 128
	}, []string{"op"})
	f(m.combinedBatch)
	f(m.tombstonesReaped)
	f(m.requests)
	f(m.errors)
	f(m.quorumFailures)
	f(m.latency)
	f(m.readRepairs)
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mnemo_keys", Help: "Keys stored on this node with a live value.",
	}, func() float64 { return float64(n.storeCounts().Live) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mnemo_tombstones", Help: "Keys stored on this node that read as deleted.",
	}, func() float64 { return float64(n.storeCounts().Tombstones) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mnemo_members_alive", Help: "Ring members this node sees alive (itself included).",
	}, func() float64 {
		alive := 0
		if v := n.view.Load(); v != nil {
			for id := range v.members {
				if n.alive(id) {
					alive++
				}
			}
		}
		return float64(alive)
	}))
	return m
}

// observe records one client request.
func (m *metrics) observe(op string, start time.Time, err error) {
	m.requests.WithLabelValues(op).Inc()
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		code := wire.CodeInternal
		var we *wire.Error
		if errors.As(toWireError(err), &we) {
			code = we.Code
		}
		m.errors.WithLabelValues(op, code.String()).Inc()
	}
}
