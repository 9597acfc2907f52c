package benchutil

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc (USER_HZ). It is 100 on
// every Linux architecture Go supports; reading it would need sysconf.
const userHZ = 100

// ProcStat is a process's CPU time and memory at one moment.
type ProcStat struct {
	// CPU is user plus system time since the process started.
	CPU time.Duration
	// RSS is the resident set now (VmRSS); PeakRSS the highest it has
	// been (VmHWM). In bytes.
	RSS, PeakRSS int64
}

// ReadProc reads process pid's figures from /proc/PID/stat and
// /proc/PID/status; pid 0 reads this process.
func ReadProc(pid int) (ProcStat, error) {
	dir := "/proc/self"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	var s ProcStat
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, fmt.Errorf("benchutil: %w", err)
	}
	if s.CPU, err = parseStatCPU(b); err != nil {
		return s, err
	}
	b, err = os.ReadFile(dir + "/status")
	if err != nil {
		return s, fmt.Errorf("benchutil: %w", err)
	}
	s.RSS, s.PeakRSS = parseStatusMem(b)
	return s, nil
}

// parseStatCPU reads utime + stime (fields 14 and 15) of /proc/PID/stat.
// The command name (field 2) is in parentheses and may hold spaces or
// parentheses itself, so fields are counted after its last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("benchutil: malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 13 {
		return 0, errors.New("benchutil: short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[14-3], 10, 64)
	st, err2 := strconv.ParseInt(f[15-3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("benchutil: /proc stat times: %w", err)
	}
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// parseStatusMem reads VmRSS and VmHWM (kB) of /proc/PID/status, in bytes.
func parseStatusMem(b []byte) (rss, hwm int64) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// MachineCPU is the whole machine's CPU time, all cores, from /proc/stat.
type MachineCPU struct {
	// Busy is time not idle and not waiting for I/O; Total includes both.
	Busy, Total time.Duration
}

// ReadMachineCPU reads the first line of /proc/stat.
func ReadMachineCPU() (MachineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, fmt.Errorf("benchutil: %w", err)
	}
	return parseMachineCPU(b)
}

func parseMachineCPU(b []byte) (MachineCPU, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return MachineCPU{}, errors.New("benchutil: malformed /proc/stat")
	}
	var m MachineCPU
	// user nice system idle iowait irq softirq steal [guest guest_nice]:
	// guest time is already counted in user, so stop at steal.
	for i, s := range f[1:min(len(f), 9)] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return MachineCPU{}, fmt.Errorf("benchutil: /proc/stat: %w", err)
		}
		d := time.Duration(v) * time.Second / userHZ
		m.Total += d
		if i != 3 && i != 4 { // idle, iowait
			m.Busy += d
		}
	}
	return m, nil
}

// LoadAvg returns the 1, 5 and 15 minute load averages as /proc/loadavg
// prints them, or "?" when unreadable.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
