package bench

// The bench's report: what each phase measured (also the JSON file's
// shape), the targets of issues 3, 4, 6 and 7 checked against it, and the
// table printed at the end of a run.

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Report is one run's results; it is written as JSON.
type Report struct {
	Started     time.Time             `json:"started"`
	Seconds     float64               `json:"seconds"`
	Seed        uint64                `json:"seed"`
	Machine     benchMachine          `json:"machine"`
	LoadAvgEnd  string                `json:"load_avg_end"`
	Settings    map[string]any        `json:"settings"`
	Preload     *benchLoadFigures     `json:"sdk_preload,omitempty"`
	SDK         []PhaseResult         `json:"sdk,omitempty"`
	OpenLoop    []benchOpenLoop       `json:"sdk_open_loop,omitempty"`
	Redis       []benchRedisRow       `json:"redis,omitempty"`
	RedisRatios []benchRedisRatio     `json:"redis_ratios,omitempty"`
	Handoff     *benchHandoff         `json:"hinted_handoff,omitempty"`
	AE          *benchAE              `json:"anti_entropy,omitempty"`
	Transfer    *benchTransfer        `json:"transfer,omitempty"`
	Peer        *benchPeer            `json:"peer,omitempty"`
	Resources   []benchPhaseResources `json:"resources,omitempty"`
	Profiles    []benchProfile        `json:"profiles,omitempty"`
	Targets     []benchTarget         `json:"targets"`
	Skipped     []string              `json:"skipped,omitempty"`
	Errors      []string              `json:"errors,omitempty"`
}

type benchMachine struct {
	Cores        int    `json:"cores"`
	LoadAvgStart string `json:"load_avg_start"`
	Go           string `json:"go"`
}

// benchLoadFigures describe a bulk load of keys.
type benchLoadFigures struct {
	Keys       int     `json:"keys"`
	Failed     int     `json:"failed"`
	Seconds    float64 `json:"seconds"`
	KeysPerSec float64 `json:"keys_per_sec"`
	Sync       string  `json:"sync"`
	Callers    int     `json:"callers"`
}

// PhaseResult is one closed-loop SDK phase.
type PhaseResult struct {
	Op        string  `json:"op"`
	NRW       string  `json:"nrw"`
	Sync      string  `json:"sync,omitempty"`
	Ops       int     `json:"ops"`
	Errors    int64   `json:"errors"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	P999Ms    float64 `json:"p999_ms"`
}

// benchOpenLoop is one open-loop SDK phase: a fixed arrival rate,
// latency from each request's scheduled send time.
type benchOpenLoop struct {
	Op            string  `json:"op"`
	NRW           string  `json:"nrw"`
	PeakOpsPerSec float64 `json:"peak_ops_per_sec"`
	RatePerSec    float64 `json:"rate_per_sec"`
	// HalfPeak marks the phase at half the closed loop's peak (the
	// target's); the others ran at an --open-rate.
	HalfPeak       bool    `json:"half_peak"`
	AchievedPerSec float64 `json:"achieved_per_sec"`
	Ops            int     `json:"ops"`
	Errors         int64   `json:"errors"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	P999Ms         float64 `json:"p999_ms"`
	MaxMs          float64 `json:"max_ms"`
}

// benchRedisRow is one redis-benchmark test against one server.
type benchRedisRow struct {
	Server   string  `json:"server"` // mnemo or redis
	Config   string  `json:"config"`
	Fsync    bool    `json:"fsync_each_write"`
	Test     string  `json:"test"`
	Pipeline int     `json:"pipeline"`
	Requests int     `json:"requests"`
	Clients  int     `json:"clients"`
	RPS      float64 `json:"rps"`
	AvgMs    float64 `json:"avg_ms"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
}

// benchRedisRatio is mnemo's ops/s over redis's for one test, pipeline and
// pairing of configurations.
type benchRedisRatio struct {
	Pairing  string  `json:"pairing"`
	Test     string  `json:"test"`
	Pipeline int     `json:"pipeline"`
	Mnemo    float64 `json:"mnemo_rps"`
	Redis    float64 `json:"redis_rps"`
	Ratio    float64 `json:"ratio"`
}

// benchPhaseResources are the processes' CPU and memory over one phase.
type benchPhaseResources struct {
	Phase   string             `json:"phase"`
	Ops     int                `json:"ops"`
	Seconds float64            `json:"seconds"`
	Procs   []benchProcFigures `json:"procs"`
	// The driver is this process plus the redis-benchmark it ran.
	DriverCPUSeconds  float64 `json:"driver_cpu_s"`
	DriverCPUPer1kOps float64 `json:"driver_cpu_s_per_1k_ops"`
	// MachineBusyCores is the whole machine's average busy cores;
	// OtherBusyCores what was not the bench's processes (noise).
	MachineBusyCores float64 `json:"machine_busy_cores"`
	OtherBusyCores   float64 `json:"other_busy_cores"`
}

// benchRSS is a process's memory at one moment.
type benchRSS struct {
	Name       string  `json:"name"`
	RSSMiB     float64 `json:"rss_mib"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

type benchProcFigures struct {
	Name        string  `json:"name"`
	CPUSeconds  float64 `json:"cpu_s"`
	CPUPer1kOps float64 `json:"cpu_s_per_1k_ops"`
	RSSMiB      float64 `json:"rss_mib"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	// The store's WAL fsyncs during the phase and their mean latency,
	// and its write stalls (from the node's /metrics).
	WALFsyncs         int64   `json:"wal_fsyncs,omitempty"`
	WALFsyncMeanMs    float64 `json:"wal_fsync_mean_ms,omitempty"`
	WriteStalls       int64   `json:"write_stalls,omitempty"`
	WriteStallSeconds float64 `json:"write_stall_s,omitempty"`
}

// nodesCPUPer1k sums the nodes' CPU per 1,000 operations.
func (r benchPhaseResources) nodesCPUPer1k() float64 {
	s := 0.0
	for _, p := range r.Procs {
		s += p.CPUPer1kOps
	}
	return s
}

// benchHandoff: issue 3's rejoin through hint replay alone.
type benchHandoff struct {
	Keys        int              `json:"keys_missed"`
	Load        benchLoadFigures `json:"load"`
	HintsStored float64          `json:"hints_stored_for_node3"`
	// From node-3's restart (process start).
	SecondsToSeenAlive float64 `json:"seconds_to_seen_alive"`
	SecondsToFirstHint float64 `json:"seconds_to_first_replayed"`
	SecondsToComplete  float64 `json:"seconds_to_complete"`
	HintsReplayed      float64 `json:"hints_replayed"`
	// Replayed per second from the restart, and over the replay itself
	// (first replayed seen to complete).
	ReplayedPerSec       float64 `json:"replayed_per_sec_from_restart"`
	ReplayedPerSecWindow float64 `json:"replayed_per_sec_replaying"`
	Node3Keys            int64   `json:"node3_keys"`
	SampleChecked        int     `json:"sample_checked"`
	SampleWrong          int     `json:"sample_wrong"`
	Sync                 string  `json:"sync"`
}

// benchAE: issue 4's anti-entropy measurements.
type benchAE struct {
	Keys      int                `json:"keys"`
	Load      benchLoadFigures   `json:"load"`
	RSSLoaded []benchRSS         `json:"rss_after_load"`
	Round     *benchAERound      `json:"in_sync_round,omitempty"`
	Repair    *benchAERepair     `json:"repair,omitempty"`
	Fore      *benchAEForeground `json:"foreground,omitempty"`
}

type benchAERound struct {
	Pairs      int     `json:"pairs"`
	Partitions int     `json:"partitions"`
	Exchanges  float64 `json:"partition_exchanges"`
	Bytes      float64 `json:"bytes_all_nodes"`
	BytesPair  float64 `json:"bytes_per_pair"`
	// BusySeconds bounds the time the round took: the sum of the polling
	// periods in which exchanges were counted. SpreadSeconds is from the
	// poll before the first to the poll after the last (the schedule
	// spreads partitions over ticks). PollMs is the polling period.
	BusySeconds   float64 `json:"busy_seconds"`
	SpreadSeconds float64 `json:"spread_seconds"`
	PollMs        float64 `json:"poll_ms"`
}

type benchAERepair struct {
	Missing        int     `json:"missing_keys"`
	MissingBytes   int64   `json:"missing_bytes"`
	SecondsToAlive float64 `json:"seconds_to_seen_alive"`
	SecondsToTrees float64 `json:"seconds_to_trees_built"`
	SecondsToEqual float64 `json:"seconds_to_equal_roots"`
	BytesSent      float64 `json:"bytes_sent_all_nodes"`
	BytesPerByte   float64 `json:"bytes_per_missing_byte"`
	KeysReceived   float64 `json:"node3_keys_received"`
}

type benchAEForeground struct {
	Rate          int     `json:"rate_per_sec"`
	BaselineOps   int     `json:"baseline_ops"`
	BaselineP99Ms float64 `json:"baseline_p99_ms"`
	DuringOps     int     `json:"during_ops"`
	DuringP99Ms   float64 `json:"during_p99_ms"`
	DuringErrors  int64   `json:"during_errors"`
	// The same per kind: gets (R=2) and puts (W=2).
	BaselineGetP99Ms float64 `json:"baseline_get_p99_ms"`
	BaselinePutP99Ms float64 `json:"baseline_put_p99_ms"`
	DuringGetP99Ms   float64 `json:"during_get_p99_ms"`
	DuringPutP99Ms   float64 `json:"during_put_p99_ms"`
	DuringSeconds    float64 `json:"during_seconds"`
	Ratio            float64 `json:"ratio"`
	// SecondsToEqual is this second repair's time to equal roots (after
	// the load stopped at the key count).
	SecondsToKeys  float64 `json:"seconds_to_keys"`
	SecondsToEqual float64 `json:"seconds_to_equal_roots"`
	// DuringTimeline is the p99 (ms) of the load during the repair per
	// stretch of TimelineSeconds from node-3's restart: where the slow
	// requests fall.
	DuringTimeline []float64 `json:"during_p99_ms_timeline"`
	// BaselineTimeline is the same for the baseline.
	BaselineTimeline []float64 `json:"baseline_p99_ms_timeline"`
	TimelineSeconds  float64   `json:"timeline_seconds"`
}

// benchTransfer: issue 7's join of a 4th node.
type benchTransfer struct {
	KeysInCluster    int64   `json:"keys_in_cluster"`
	SecondsToActive  float64 `json:"seconds_to_active"`
	KeysReceived     float64 `json:"keys_received"`
	BytesReceived    float64 `json:"bytes_received"`
	MBPerSec         float64 `json:"mb_per_sec"`
	KeysPerSec       float64 `json:"keys_per_sec"`
	WindowSeconds    float64 `json:"transfer_window_seconds"`
	MBPerSecWindow   float64 `json:"mb_per_sec_window"`
	KeysPerSecWindow float64 `json:"keys_per_sec_window"`
	Node4Keys        int64   `json:"node4_keys"`
}

// benchProfile is a CPU profile taken during a phase.
type benchProfile struct {
	Phase string   `json:"phase"`
	Node  string   `json:"node"`
	File  string   `json:"file"`
	Top   []string `json:"top,omitempty"`
}

// benchTarget is one target of the issues against what the run measured.
type benchTarget struct {
	Issue  int    `json:"issue"`
	What   string `json:"what"`
	Target string `json:"target"`
	Value  string `json:"value"`
	// Status is PASS, MISS, or n/a (not measured in this run).
	Status string `json:"status"`
}

// checkTargets compares the run with the targets of issues 3, 4, 6, 7
// and 12.
func (r *Report) checkTargets(o Config) []benchTarget {
	var out []benchTarget
	add := func(issue int, what, target, value string, ok, measured bool) {
		st := "n/a"
		if measured {
			st = "MISS"
			if ok {
				st = "PASS"
			}
		}
		out = append(out, benchTarget{issue, what, target, value, st})
	}
	// Issue 6: redis ratios as shipped.
	ratios := map[string]benchRedisRatio{}
	for _, x := range r.RedisRatios {
		ratios[fmt.Sprintf("%s|%s|%d", x.Pairing, x.Test, x.Pipeline)] = x
	}
	for _, p := range o.RedisPipelines {
		for _, t := range []string{"SET", "GET"} {
			x, ok := ratios[fmt.Sprintf("%s|%s|%d", benchPairingShipped, t, p)]
			v := "-"
			if ok {
				v = fmt.Sprintf("%.2fx", x.Ratio)
			}
			add(6, fmt.Sprintf("redis-benchmark %s -P %d, mnemo (N=3 R=2 W=2, --sync always) / redis", t, p), ">= 0.5x", v, ok && x.Ratio >= 0.5, ok)
		}
	}
	for _, op := range []string{"put", "get"} {
		var ol *benchOpenLoop
		for i := range r.OpenLoop {
			if r.OpenLoop[i].Op == op && r.OpenLoop[i].HalfPeak {
				ol = &r.OpenLoop[i]
			}
		}
		if ol == nil {
			add(6, "SDK "+op+" p99 at half the peak", "< 2 ms", "-", false, false)
			continue
		}
		add(6, fmt.Sprintf("SDK %s p99 at half the peak (%s, %.0f/s open loop)", op, ol.NRW, ol.RatePerSec), "< 2 ms",
			fmt.Sprintf("%.2f ms", ol.P99Ms), ol.P99Ms < 2 && ol.Errors == 0, true)
	}
	if r.AE != nil && len(r.AE.RSSLoaded) > 0 {
		worst := 0.0
		for _, p := range r.AE.RSSLoaded {
			worst = max(worst, p.RSSMiB)
		}
		what := fmt.Sprintf("RSS per node, %d keys of %d bytes", r.AE.Keys, o.ValueSize)
		if r.AE.Keys < 1000000 {
			what += " (fewer than the target's 1M)"
		}
		add(6, what, "< 200 MiB", fmt.Sprintf("%.0f MiB (max of nodes)", worst), worst < 200, true)
	} else {
		add(6, "RSS per node with 1M keys", "< 200 MiB", "-", false, false)
	}
	// Issue 4.
	if r.AE != nil && r.AE.Round != nil {
		x := r.AE.Round
		add(4, "in-sync round: bytes per node pair", "<= 256 KiB", fmt.Sprintf("%.1f KiB", x.BytesPair/1024), x.BytesPair <= 256*1024, true)
		add(4, "in-sync round: duration (polls with exchanges counted)", "< 1 s", fmt.Sprintf("<= %.2f s", x.BusySeconds), x.BusySeconds < 1, true)
	} else {
		add(4, "in-sync round: bytes per pair, duration", "<= 256 KiB, < 1 s", "-", false, false)
	}
	if r.AE != nil && r.AE.Repair != nil {
		x := r.AE.Repair
		add(4, fmt.Sprintf("node missing %d keys: restart to equal roots", x.Missing), "<= 10 s", fmt.Sprintf("%.2f s", x.SecondsToEqual), x.SecondsToEqual <= 10, true)
		add(4, "bytes sent per missing byte", "<= 1.5", fmt.Sprintf("%.2f", x.BytesPerByte), x.BytesPerByte <= 1.5, true)
	} else {
		add(4, "repair of a node missing keys", "<= 10 s, <= 1.5 B/B", "-", false, false)
	}
	if r.AE != nil && r.AE.Fore != nil {
		x := r.AE.Fore
		add(4, "foreground p99 during repair / without", "<= 2x", fmt.Sprintf("%.2fx (%.2f / %.2f ms)", x.Ratio, x.DuringP99Ms, x.BaselineP99Ms), x.Ratio <= 2, true)
	} else {
		add(4, "foreground p99 during repair / without", "<= 2x", "-", false, false)
	}
	r.peerTargets(add)
	return out
}

// peerTargets adds issue 12's targets: ratios against Olric in the peer
// phase, and the light-load tail.
func (r *Report) peerTargets(add func(issue int, what, target, value string, ok, measured bool)) {
	ratio := map[string]benchPeerRatio{}
	if r.Peer != nil {
		for _, x := range r.Peer.Ratios {
			ratio[fmt.Sprintf("%s|%s|%d", x.Pairing, x.Test, x.Pipeline)] = x
		}
	}
	rps := func(sync, test string, p int, atLeast float64) {
		x, ok := ratio[fmt.Sprintf("mnemo --sync %s / %s|%s|%d", sync, peerOlric, test, p)]
		v := "-"
		if ok {
			v = fmt.Sprintf("%.2fx", x.RPS)
		}
		add(12, fmt.Sprintf("redis-benchmark %s -P %d ops/s, mnemo --sync %s / Olric", test, p, sync), fmt.Sprintf(">= %gx", atLeast), v, ok && x.RPS >= atLeast, ok)
	}
	for _, p := range []int{1, 16} {
		rps("none", "SET", p, 2)
		rps("none", "GET", p, 2)
	}
	rps("always", "SET", 1, 1.5)
	rps("always", "GET", 1, 1.5)
	rps("always", "GET", 16, 2)
	if x, ok := ratio[fmt.Sprintf("mnemo --sync none / %s|SET|1", peerOlric)]; ok {
		add(12, "p99 SET -P 1, mnemo --sync none / Olric", "<= 1x", fmt.Sprintf("%.2fx", x.P99), x.P99 <= 1, true)
	} else {
		add(12, "p99 SET -P 1, mnemo --sync none / Olric", "<= 1x", "-", false, false)
	}
	for _, sync := range []string{"none", "always"} {
		for _, test := range []string{"SET", "GET"} {
			x, ok := ratio[fmt.Sprintf("mnemo --sync %s / %s|%s|1", sync, peerOlric, test)]
			v := "-"
			if ok {
				v = fmt.Sprintf("%.2fx", x.CPUPerOp)
			}
			add(12, fmt.Sprintf("CPU per %s -P 1 (all nodes), mnemo --sync %s / Olric", test, sync), "<= 0.5x", v, ok && x.CPUPerOp <= 0.5, ok)
		}
	}
	for _, lim := range []struct {
		sync string
		ms   float64
	}{{"none", 3}, {"always", 6}} {
		var st *benchPeerTailStat
		if r.Peer != nil {
			for i := range r.Peer.TailSummary {
				if x := &r.Peer.TailSummary[i]; x.Sync == lim.sync && x.RatePerSec == 1000 {
					st = x
				}
			}
		}
		what := fmt.Sprintf("open loop 1,000 ops/s (3,2,2) p99, --sync %s", lim.sync)
		target := fmt.Sprintf("<= %g ms", lim.ms)
		if st == nil {
			add(12, what, target, "-", false, false)
			continue
		}
		add(12, what, target, fmt.Sprintf("%.2f ms", st.P99Ms.Median), st.P99Ms.Median <= lim.ms && st.Errors == 0, true)
	}
}

// print writes the report as tables.
func (r *Report) print(w io.Writer, o Config) {
	fmt.Fprintf(w, "\nmnemo bench  %s  seed %d  %d cores  load average %s at start, %s at end  (%s)\n",
		r.Started.Format(time.DateTime), r.Seed, r.Machine.Cores, r.Machine.LoadAvgStart, r.LoadAvgEnd,
		(time.Duration(r.Seconds) * time.Second).String())
	var tw *textTable
	flush := func() { tw.flush() }

	if len(r.SDK) > 0 {
		fmt.Fprintf(w, "\nGo SDK, closed loop: %d callers, %d-byte values, %d keys, nodes --sync %s, %v per phase",
			o.Concurrency, o.ValueSize, o.Keys, o.Sync, o.Duration)
		if r.Preload != nil {
			fmt.Fprintf(w, " (preload: %d keys at %.0f keys/s)", r.Preload.Keys, r.Preload.KeysPerSec)
		}
		fmt.Fprintln(w)
		tw = newTextTable(w, 2)
		tw.add("op\tN,R,W\tops/s\tp50 ms\tp99 ms\tp99.9 ms\terrors\t")
		for _, x := range r.SDK {
			tw.addf("%s\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t\n", x.Op, x.NRW, x.OpsPerSec, x.P50Ms, x.P99Ms, x.P999Ms, x.Errors)
		}
		flush()
	}
	if len(r.OpenLoop) > 0 {
		fmt.Fprintf(w, "\nGo SDK, open loop at half the peak, then at each --open-rate (fixed arrival rate, latency from the scheduled send), %v per phase\n", o.OpenDuration)
		tw = newTextTable(w, 2)
		tw.add("op\tN,R,W\tpeak/s\trate/s\tachieved/s\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\terrors\t")
		for _, x := range r.OpenLoop {
			tw.addf("%s\t%s\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t\n", x.Op, x.NRW, x.PeakOpsPerSec, x.RatePerSec, x.AchievedPerSec, x.P50Ms, x.P99Ms, x.P999Ms, x.MaxMs, x.Errors)
		}
		flush()
	}
	if len(r.Redis) > 0 {
		fmt.Fprintf(w, "\nredis-benchmark -c %d -n %d -r %d -d %d (mnemo: node-1's Redis port, N=3 R=2 W=2)\n", o.RedisClients, o.RedisRequests, o.RedisKeys, o.ValueSize)
		tw = newTextTable(w, 4)
		tw.add("server\tconfiguration\tfsync/write\ttest\t-P\tops/s\tp50 ms\tp99 ms\tmax ms\t")
		for _, x := range r.Redis {
			fs := "no"
			if x.Fsync {
				fs = "yes"
			}
			tw.addf("%s\t%s\t%s\t%s\t%d\t%.0f\t%.3f\t%.3f\t%.3f\t\n", x.Server, x.Config, fs, x.Test, x.Pipeline, x.RPS, x.P50Ms, x.P99Ms, x.MaxMs)
		}
		flush()
		if len(r.RedisRatios) > 0 {
			fmt.Fprintln(w, "\nmnemo / redis, ops/s")
			tw = newTextTable(w, 2)
			tw.add("pairing\ttest\t-P\tmnemo ops/s\tredis ops/s\tratio\t")
			for _, x := range r.RedisRatios {
				tw.addf("%s\t%s\t%d\t%.0f\t%.0f\t%.2fx\t\n", x.Pairing, x.Test, x.Pipeline, x.Mnemo, x.Redis, x.Ratio)
			}
			flush()
		}
	}
	if h := r.Handoff; h != nil {
		fmt.Fprintf(w, "\nHinted handoff (issue 3): node-3 killed, %d keys written (%.0f keys/s, W=2), restarted; hints on, anti-entropy and read repair off, --sync %s\n",
			h.Keys, h.Load.KeysPerSec, h.Sync)
		fmt.Fprintf(w, "  hints held for node-3: %.0f; from restart: seen alive %.2f s, first replayed %.2f s, node-3 holds every key (hints pending 0, %d keys) %.2f s\n",
			h.HintsStored, h.SecondsToSeenAlive, h.SecondsToFirstHint, h.Node3Keys, h.SecondsToComplete)
		fmt.Fprintf(w, "  hints replayed: %.0f, %.0f/s from restart, %.0f/s while replaying; local copies checked: %d, wrong %d\n",
			h.HintsReplayed, h.ReplayedPerSec, h.ReplayedPerSecWindow, h.SampleChecked, h.SampleWrong)
	}
	if a := r.AE; a != nil {
		fmt.Fprintf(w, "\nAnti-entropy (issue 4): 3 nodes, N=3, %d keys of %d bytes loaded at %.0f keys/s (%d callers); hints and read repair off, --sync %s, --ae-interval %v\n",
			a.Keys, o.ValueSize, a.Load.KeysPerSec, a.Load.Callers, a.Load.Sync, o.AeInterval)
		var rss []string
		for _, p := range a.RSSLoaded {
			rss = append(rss, fmt.Sprintf("%s %.0f MiB (peak %.0f)", p.Name, p.RSSMiB, p.PeakRSSMiB))
		}
		fmt.Fprintf(w, "  RSS after the load: %s\n", strings.Join(rss, ", "))
		if x := a.Round; x != nil {
			fmt.Fprintf(w, "  (a) in-sync round: %.0f partition exchanges over %d pairs, %.0f bytes in all, %.1f KiB per pair (per exchange of each partition); busy <= %.2f s (polls of %.0f ms with exchanges), spread over %.2f s by the schedule\n",
				x.Exchanges, x.Pairs, x.Bytes, x.BytesPair/1024, x.BusySeconds, x.PollMs, x.SpreadSeconds)
		}
		if x := a.Repair; x != nil {
			fmt.Fprintf(w, "  (b) node-3 missing %d keys (%d bytes of keys and values): from restart, seen alive %.2f s, trees built %.2f s, equal roots %.2f s;\n      %.0f bytes sent by all nodes = %.2f per missing byte; node-3 received %.0f keys\n",
				x.Missing, x.MissingBytes, x.SecondsToAlive, x.SecondsToTrees, x.SecondsToEqual, x.BytesSent, x.BytesPerByte, x.KeysReceived)
		}
		if x := a.Fore; x != nil {
			fmt.Fprintf(w, "  (c) light load %d/s (half gets R=2, half puts W=2, via node-1 and node-2, open loop): p99 %.2f ms without repair (%d ops), %.2f ms during a repair of %d more missing keys (%d ops over %.1f s, %d errors) = %.2fx\n",
				x.Rate, x.BaselineP99Ms, x.BaselineOps, x.DuringP99Ms, o.AeMissing, x.DuringOps, x.DuringSeconds, x.DuringErrors, x.Ratio)
			fmt.Fprintf(w, "      p99 of gets %.2f -> %.2f ms, of puts %.2f -> %.2f ms; that repair: node-3 holds every key %.2f s after restart, equal roots %.2f s\n",
				x.BaselineGetP99Ms, x.DuringGetP99Ms, x.BaselinePutP99Ms, x.DuringPutP99Ms, x.SecondsToKeys, x.SecondsToEqual)
			timeline := func(what string, ms []float64) {
				if len(ms) == 0 {
					return
				}
				parts := make([]string, len(ms))
				for i, v := range ms {
					parts[i] = fmt.Sprintf("%.0f", v)
				}
				fmt.Fprintf(w, "      p99 ms per %.0f s %s: %s\n", x.TimelineSeconds, what, strings.Join(parts, " "))
			}
			timeline("of the baseline", x.BaselineTimeline)
			timeline("from the restart", x.DuringTimeline)
		}
	}
	if t := r.Transfer; t != nil {
		fmt.Fprintf(w, "\nOwnership transfer (issue 7): node-4 joins the ae cluster holding %d keys (same flags)\n", t.KeysInCluster)
		fmt.Fprintf(w, "  active after %.2f s; received %.0f keys, %.1f MB: %.1f MB/s, %.0f keys/s from start (%.1f MB/s, %.0f keys/s over the %.2f s of transfer)\n",
			t.SecondsToActive, t.KeysReceived, t.BytesReceived/1e6, t.MBPerSec, t.KeysPerSec, t.MBPerSecWindow, t.KeysPerSecWindow, t.WindowSeconds)
		if t.Node4Keys > 0 {
			fmt.Fprintf(w, "  node-4 holds %d keys: %.2f keys received per key held (a gained partition is read from one live replica holding it)\n",
				t.Node4Keys, t.KeysReceived/float64(t.Node4Keys))
		}
	}
	if r.Peer != nil {
		r.Peer.print(w)
	}
	if len(r.Resources) > 0 {
		fmt.Fprintln(w, "\nResources per phase: CPU seconds per 1,000 operations / RSS MiB at the end; driver = this process (+ redis-benchmark); other = cores busy with other work on the machine")
		names := []string{}
		seen := map[string]bool{}
		for _, x := range r.Resources {
			for _, p := range x.Procs {
				if !seen[p.Name] {
					seen[p.Name] = true
					names = append(names, p.Name)
				}
			}
		}
		hdr := "phase\tops\t"
		for _, n := range names {
			hdr += n + "\t"
		}
		tw = newTextTable(w, 1)
		tw.add(hdr + "procs cpu/1k\tdriver cpu/1k\tother cores\t")
		for _, x := range r.Resources {
			line := fmt.Sprintf("%s\t%d\t", x.Phase, x.Ops)
			for _, n := range names {
				cell := "\t"
				for _, p := range x.Procs {
					if p.Name == n {
						cell = fmt.Sprintf("%.3f / %.0f\t", p.CPUPer1kOps, p.RSSMiB)
					}
				}
				line += cell
			}
			tw.addf("%s%.3f\t%.3f\t%.2f\t\n", line, x.nodesCPUPer1k(), x.DriverCPUPer1kOps, x.OtherBusyCores)
		}
		flush()
		writeWALTable(w, r.Resources)
	}
	for _, p := range r.Profiles {
		fmt.Fprintf(w, "\nCPU profile of %s during %s: %s\n", p.Node, p.Phase, p.File)
		for _, l := range p.Top {
			fmt.Fprintln(w, "  "+l)
		}
	}
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "\nTargets")
		ta := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(ta, "issue\twhat\ttarget\treached\tstatus")
		for _, t := range r.Targets {
			fmt.Fprintf(ta, "#%d\t%s\t%s\t%s\t%s\n", t.Issue, t.What, t.Target, t.Value, t.Status)
		}
		ta.Flush()
	}
	for _, s := range r.Skipped {
		fmt.Fprintln(w, "skipped:", s)
	}
	for _, e := range r.Errors {
		fmt.Fprintln(w, "ERROR:", e)
	}
}

// textTable prints tab-separated cells in aligned columns: the first left
// columns (text) aligned left, the others (numbers) right.
type textTable struct {
	w    io.Writer
	left int
	rows [][]string
}

func newTextTable(w io.Writer, left int) *textTable { return &textTable{w: w, left: left} }

func (t *textTable) add(line string) {
	t.rows = append(t.rows, strings.Split(strings.TrimRight(line, "\t\n"), "\t"))
}

func (t *textTable) addf(format string, args ...any) { t.add(fmt.Sprintf(format, args...)) }

func (t *textTable) flush() {
	var width []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range t.rows {
		var b strings.Builder
		b.WriteString(" ")
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			b.WriteString(" ")
			if i < t.left {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
			b.WriteString(" ")
		}
		fmt.Fprintln(t.w, strings.TrimRight(b.String(), " "))
	}
	t.rows = nil
}

// writeWALTable prints, for the phases in which the nodes fsynced their
// write-ahead logs, each node's fsyncs per second and their mean latency,
// and the time writes were stalled: what a --sync always write waits for.
func writeWALTable(w io.Writer, res []benchPhaseResources) {
	var names []string
	seen := map[string]bool{}
	var rows []benchPhaseResources
	for _, x := range res {
		fsynced := false
		for _, p := range x.Procs {
			if p.WALFsyncs > 0 {
				fsynced = true
				if !seen[p.Name] {
					seen[p.Name] = true
					names = append(names, p.Name)
				}
			}
		}
		if fsynced {
			rows = append(rows, x)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nWAL fsyncs per phase, from each node's /metrics: fsyncs per second / mean fsync ms (a --sync always write waits for one; all nodes share one disk); write stalls")
	hdr := "phase\t"
	for _, n := range names {
		hdr += n + "\t"
	}
	tw := newTextTable(w, 1)
	tw.add(hdr + "stalls\tstalled s\t")
	for _, x := range rows {
		line := x.Phase + "\t"
		var stalls int64
		var stalled float64
		for _, n := range names {
			cell := "\t"
			for _, p := range x.Procs {
				if p.Name == n && x.Seconds > 0 {
					cell = fmt.Sprintf("%.0f / %.2f\t", float64(p.WALFsyncs)/x.Seconds, p.WALFsyncMeanMs)
					stalls += p.WriteStalls
					stalled += p.WriteStallSeconds
				}
			}
			line += cell
		}
		tw.addf("%s%d\t%.2f\t\n", line, stalls, stalled)
	}
	tw.flush()
}
