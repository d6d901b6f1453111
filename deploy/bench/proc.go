package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat (clock ticks):
// USER_HZ, 100 on Linux whatever the kernel's internal tick rate.
const userHZ = 100

// Usage is what /proc says about a process at one moment.
type Usage struct {
	CPU     time.Duration // user + system time since the process started
	RSS     int64         // resident set size now, bytes (VmRSS)
	PeakRSS int64         // largest resident set size so far, bytes (VmHWM)
}

// ReadUsage reads the usage of process pid from /proc.
func ReadUsage(pid int) (Usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Usage{}, err
	}
	return ParseUsage(stat, status)
}

// ParseUsage reads a Usage from the contents of /proc/<pid>/stat and
// /proc/<pid>/status (proc(5)): utime and stime, the 14th and 15th fields of
// stat, counted after the command name, which may hold spaces and
// parentheses; VmRSS and VmHWM of status, in kB.
func ParseUsage(stat, status []byte) (Usage, error) {
	var u Usage
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return u, fmt.Errorf("/proc stat: no command name")
	}
	f := bytes.Fields(stat[end+1:]) // f[0] is field 3, state
	if len(f) < 13 {
		return u, fmt.Errorf("/proc stat: %d fields after the command name", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] { // fields 14 and 15
		n, err := strconv.ParseUint(string(s), 10, 64)
		if err != nil {
			return u, fmt.Errorf("/proc stat: utime or stime %q", s)
		}
		ticks += n
	}
	u.CPU = time.Duration(ticks) * time.Second / userHZ
	for _, line := range bytes.Split(status, []byte("\n")) {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || !(bytes.Equal(name, []byte("VmRSS")) || bytes.Equal(name, []byte("VmHWM"))) {
			continue
		}
		v := bytes.Fields(rest)
		if len(v) != 2 || string(v[1]) != "kB" {
			return u, fmt.Errorf("/proc status: %s", line)
		}
		kb, err := strconv.ParseInt(string(v[0]), 10, 64)
		if err != nil {
			return u, fmt.Errorf("/proc status: %s", line)
		}
		if string(name) == "VmRSS" {
			u.RSS = kb << 10
		} else {
			u.PeakRSS = kb << 10
		}
	}
	if u.PeakRSS == 0 {
		return u, fmt.Errorf("/proc status: no VmHWM")
	}
	return u, nil
}
