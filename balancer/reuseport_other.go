//go:build !linux

package balancer

import "syscall"

// reusePortSupported: the BSDs' SO_REUSEPORT does not spread connections
// over the sockets (FreeBSD's SO_REUSEPORT_LB does, but is untested), and
// Windows has no equivalent, so Config.ReusePort is refused there.
const reusePortSupported = false

func reusePortControl(_, _ string, _ syscall.RawConn) error { return errReusePortUnsupported }
func migratesQueuedConnections() bool                       { return false }
