package benchutil

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// RedisResult is one line of `redis-benchmark --csv` (Redis 7's columns:
// test, rps, avg, min, p50, p95, p99 and max latency in milliseconds).
type RedisResult struct {
	Test                                     string
	RPS                                      float64
	AvgMs, MinMs, P50Ms, P95Ms, P99Ms, MaxMs float64
}

// ParseRedisBenchmarkCSV reads redis-benchmark's --csv output. Columns are
// found by their header names, so an older version with fewer columns
// (only test and rps) parses too, leaving the others zero.
func ParseRedisBenchmarkCSV(r io.Reader) ([]RedisResult, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("benchutil: redis-benchmark csv: %w", err)
	}
	col := map[string]int{}
	var out []RedisResult
	for _, row := range rows {
		if len(row) == 0 {
			continue
		}
		if strings.EqualFold(row[0], "test") {
			for i, name := range row {
				col[strings.ToLower(name)] = i
			}
			continue
		}
		if len(col) == 0 {
			// No header (redis-benchmark before 6.2): test, rps.
			col = map[string]int{"test": 0, "rps": 1}
		}
		get := func(name string) (float64, error) {
			i, ok := col[name]
			if !ok || i >= len(row) {
				return 0, nil
			}
			return strconv.ParseFloat(row[i], 64)
		}
		var res RedisResult
		res.Test = row[col["test"]]
		var errs []error
		for _, f := range []struct {
			name string
			dst  *float64
		}{{"rps", &res.RPS}, {"avg_latency_ms", &res.AvgMs}, {"min_latency_ms", &res.MinMs},
			{"p50_latency_ms", &res.P50Ms}, {"p95_latency_ms", &res.P95Ms}, {"p99_latency_ms", &res.P99Ms}, {"max_latency_ms", &res.MaxMs}} {
			v, err := get(f.name)
			errs = append(errs, err)
			*f.dst = v
		}
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("benchutil: redis-benchmark csv line %q: %w", strings.Join(row, ","), err)
		}
		out = append(out, res)
	}
	if len(out) == 0 {
		return nil, errors.New("benchutil: redis-benchmark printed no results")
	}
	return out, nil
}
