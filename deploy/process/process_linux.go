package process

import (
	"os"
	"strconv"
	"strings"
)

// procStartTicks reads a process's start time, in clock ticks since boot,
// from /proc/<pid>/stat. A pid that is gone, or a zombie waiting to be
// reaped, reports ok false.
func procStartTicks(pid int) (ticks uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name in parentheses may hold spaces and ')'; the fields
	// that follow the last ')' are plain.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state), so field 22 (starttime) is f[19].
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	ticks, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false
	}
	return ticks, true
}
