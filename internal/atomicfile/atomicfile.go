// Package atomicfile writes files so that a reader, or a process restarted
// after a crash, sees either the old content or the new one, never a torn
// write: a temp file in the same directory, fsync, rename over the target,
// fsync of the directory.
package atomicfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// WriteFile atomically replaces path with data, creating its directory.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, bytes.NewReader(data), perm)
}

// Write atomically replaces path with what r yields, creating its
// directory. A file that is running (an executable) is replaced, never
// overwritten in place.
func Write(path string, r io.Reader, perm os.FileMode) error {
	return write(path, r, perm, os.Rename)
}

// WriteNew writes a file that must not exist yet, atomically: the temp file
// is linked to its name, and the link fails when the name is taken, so an
// existing file (a key) is never overwritten, even by a concurrent writer.
// Its directory is created with dirPerm.
func WriteNew(path string, data []byte, perm, dirPerm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), dirPerm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return write(path, bytes.NewReader(data), perm, os.Link)
}

func write(path string, r io.Reader, perm os.FileMode, place func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after a rename
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := place(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes the rename durable. Windows cannot sync a directory
// handle; its rename is durable once the call returns.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
