package balancer

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Listener names, as Addr and Config.Listeners know them and as systemd's
// FileDescriptorName= gives them.
const (
	ListenerHTTP    = "http"
	ListenerHTTPS   = "https"
	ListenerMetrics = "metrics"
)

// listenFDsStart is the first descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// ErrNotActivated means the process was not given sockets by its service
// manager (no LISTEN_FDS for this PID).
var ErrNotActivated = errors.New("no sockets passed (LISTEN_FDS)")

// activationNames decides which listener each passed socket is, from the
// values of LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES and the process's
// PID. The result lists one name per descriptor, from fd 3 on. Named
// sockets (FileDescriptorName=http, https or metrics) go where they say;
// the others (systemd names them after their unit by default) take http,
// https and metrics in that order, among the names not taken.
func activationNames(pid int, listenPID, listenFDs, fdNames string) ([]string, error) {
	if listenPID == "" || listenFDs == "" {
		return nil, ErrNotActivated
	}
	if p, err := strconv.Atoi(listenPID); err != nil || p != pid {
		return nil, ErrNotActivated // meant for another process (our parent)
	}
	n, err := strconv.Atoi(listenFDs)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("LISTEN_FDS=%q: want a positive count", listenFDs)
	}
	given := make([]string, n)
	if fdNames != "" {
		parts := strings.Split(fdNames, ":")
		if len(parts) != n {
			return nil, fmt.Errorf("LISTEN_FDNAMES names %d sockets, LISTEN_FDS says %d", len(parts), n)
		}
		copy(given, parts)
	}
	known := map[string]bool{ListenerHTTP: true, ListenerHTTPS: true, ListenerMetrics: true}
	taken := map[string]bool{}
	for _, g := range given {
		if known[g] {
			if taken[g] {
				return nil, fmt.Errorf("LISTEN_FDNAMES names two %q sockets", g)
			}
			taken[g] = true
		}
	}
	free := []string{}
	for _, name := range []string{ListenerHTTP, ListenerHTTPS, ListenerMetrics} {
		if !taken[name] {
			free = append(free, name)
		}
	}
	names := make([]string, n)
	for i, g := range given {
		switch {
		case known[g]:
			names[i] = g
		case len(free) == 0:
			return nil, fmt.Errorf("socket %d of %d (%q): more sockets than http, https and metrics", i+1, n, g)
		default:
			names[i], free = free[0], free[1:]
		}
	}
	return names, nil
}

// ActivatedListeners returns the sockets systemd (or any service manager
// speaking its protocol) passed to this process, by listener name, and
// unsets LISTEN_* so that processes it starts do not take them too.
// Without passed sockets it returns ErrNotActivated.
func ActivatedListeners() (map[string]net.Listener, error) {
	names, err := activationNames(os.Getpid(), os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES"))
	if err != nil {
		return nil, err
	}
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(v)
	}
	lns := make(map[string]net.Listener, len(names))
	for i, name := range names {
		fd := listenFDsStart + i
		f := os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd))
		ln, err := net.FileListener(f) // dups the descriptor
		f.Close()
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("socket %s (fd %d): %w", name, fd, err)
		}
		lns[name] = ln
	}
	return lns, nil
}
