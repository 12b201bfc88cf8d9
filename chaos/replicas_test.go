package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// replicaRecord is what the process runtime records of a replica (the
// format belongs to package deploy; e2e/cluster_test.go reads the pid too).
type replicaRecord struct {
	PID    int               `json:"pid"`
	Port   int               `json:"port"`
	Labels map[string]string `json:"labels"`
}

// liveReplicas reads the process runtime's replica records under dir and
// returns those whose process still runs bin (a reused PID is left out).
func liveReplicas(dir, bin string) []replicaRecord {
	paths, _ := filepath.Glob(filepath.Join(dir, "replicas", "*.json"))
	var recs []replicaRecord
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var rec replicaRecord
		if json.Unmarshal(b, &rec) != nil || rec.PID <= 0 || !runs(rec.PID, bin) {
			continue
		}
		recs = append(recs, rec)
	}
	return recs
}

// runs reports whether pid is a live (not zombie) process whose argv[0]
// is bin.
func runs(pid int, bin string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(stat), ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv0, _, _ := strings.Cut(string(cmdline), "\x00")
	return argv0 == bin
}

// killGroup kills a replica's process group (the runtime starts each in
// its own).
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }
