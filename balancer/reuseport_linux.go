package balancer

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported: SO_REUSEPORT on Linux spreads connections over every
// socket bound to the port (by a hash of the 4-tuple), which is what lets
// a new balancer take a port over while the old one drains. Its one gap:
// a socket that closes resets the connections still queued on it, not yet
// accepted, unless net.ipv4.tcp_migrate_req=1 (Linux 5.14+) hands them to
// another socket of the group. Sockets handed over (handoff.go) have no
// such gap: there is one socket and one queue.
const reusePortSupported = true

// reusePortControl sets SO_REUSEPORT before bind. Linux lets only sockets of
// the same effective user join one port's group, so a balancer run by
// another user cannot take a share of the traffic.
func reusePortControl(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set SO_REUSEPORT: %w", serr)
	}
	return nil
}

// migratesQueuedConnections reports whether the kernel hands a closing
// listener's queued connections to another socket of its SO_REUSEPORT
// group (Linux 5.14+, off by default).
func migratesQueuedConnections() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}
