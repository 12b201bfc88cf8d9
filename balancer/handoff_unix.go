//go:build unix

package balancer

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// handoffSupported: SCM_RIGHTS over Unix sockets.
const handoffSupported = true

// lend sends ls on c. The descriptors go as they are, through
// SyscallConn: os.File's Fd would set the shared socket to blocking mode
// under our own poller.
func lend(c *net.UnixConn, ls []lendable) error {
	var fds []int
	var conns []syscall.RawConn
	for _, l := range ls {
		sc, ok := l.ln.(syscall.Conn)
		if !ok {
			return fmt.Errorf("handoff: %s listener has no descriptor", l.name)
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return fmt.Errorf("handoff %s: %w", l.name, err)
		}
		conns = append(conns, rc)
	}
	// Hold every descriptor (Control) while the message goes out, so none
	// is closed under us by a drain.
	var send func(i int) error
	send = func(i int) error {
		if i == len(conns) {
			_, _, err := c.WriteMsgUnix([]byte(handoffNames(ls)), unix.UnixRights(fds...), nil)
			return err
		}
		var serr error
		if err := conns[i].Control(func(fd uintptr) {
			fds = append(fds, int(fd))
			serr = send(i + 1)
		}); err != nil {
			return fmt.Errorf("handoff %s: %w", ls[i].name, err) // closed: draining
		}
		return serr
	}
	if err := send(0); err != nil {
		return fmt.Errorf("handoff: %w", err)
	}
	return nil
}

// TakeOver asks the balancer serving the handoff socket at path for its
// listening sockets, by name (see handoff.go). It returns ErrNoPredecessor
// when nothing serves path.
func TakeOver(path string) (map[string]net.Listener, error) {
	c, err := net.DialTimeout("unix", path, handoffTimeout)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, ErrNoPredecessor
	}
	if err != nil {
		return nil, fmt.Errorf("take over from %s: %w", path, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(handoffTimeout))
	buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(3*4))
	n, oobn, _, _, err := c.(*net.UnixConn).ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("take over from %s: %w", path, err)
	}
	var fds []int
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err == nil && len(msgs) > 0 {
		fds, err = unix.ParseUnixRights(&msgs[0])
	}
	if err != nil {
		return nil, fmt.Errorf("take over from %s: %w", path, err)
	}
	closeFDs := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	names := strings.Split(string(buf[:n]), "\n")
	if n == 0 || len(names) != len(fds) {
		closeFDs()
		return nil, fmt.Errorf("take over from %s: %d names for %d sockets", path, len(names), len(fds))
	}
	lns := make(map[string]net.Listener, len(fds))
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "handoff-"+names[i])
		ln, err := net.FileListener(f) // dups fd
		f.Close()
		if err != nil || lns[names[i]] != nil {
			for _, fd := range fds[i+1:] {
				unix.Close(fd)
			}
			for _, l := range lns {
				l.Close()
			}
			if err == nil {
				err = fmt.Errorf("socket %q given twice", names[i])
				ln.Close()
			}
			return nil, fmt.Errorf("take over from %s: %w", path, err)
		}
		lns[names[i]] = ln
	}
	return lns, nil
}
