//go:build !unix

package balancer

import (
	"errors"
	"net"
)

// handoffSupported: no SCM_RIGHTS on this system.
const handoffSupported = false

var errNoHandoff = errors.New("socket handoff needs Unix sockets with SCM_RIGHTS (Linux, BSD, macOS)")

func lend(*net.UnixConn, []lendable) error { return errNoHandoff }

// TakeOver is not supported here.
func TakeOver(string) (map[string]net.Listener, error) { return nil, errNoHandoff }
