package benchutil

import (
	"strconv"
	"strings"
)

// MetricValue returns the value of the unlabelled series name in a
// Prometheus text exposition, or -1 when it is absent.
func MetricValue(exposition, name string) float64 {
	for line := range strings.SplitSeq(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f
			}
		}
	}
	return -1
}
