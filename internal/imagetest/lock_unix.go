//go:build unix

package imagetest

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on f, waiting for it; closing f
// releases it.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
}
