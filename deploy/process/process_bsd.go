//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package process

import "syscall"

// procStartTicks reports whether pid runs as the leader of its own process
// group, as every replica does (ownProcessGroup). These systems have no
// /proc to read a start time from, so ticks is always 0 and a reused pid
// is told apart only when it does not lead a group of its own.
func procStartTicks(pid int) (ticks uint64, ok bool) {
	pgid, err := syscall.Getpgid(pid)
	return 0, err == nil && pgid == pid
}
