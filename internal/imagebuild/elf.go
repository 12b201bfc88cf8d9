package imagebuild

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrNotELF marks a binary that is not an ELF executable (a macOS build,
// say): nothing here can make it run in a Linux image.
var ErrNotELF = errors.New("not an ELF executable")

// Rootfs is what a binary needs to run in an empty image.
type Rootfs struct {
	Files []File
	// LibDirs are the directories its shared libraries were found in, for
	// LD_LIBRARY_PATH: an image has no ld.so.cache.
	LibDirs []string
}

// ELFRootfs returns the binary at path as /<basename> and, when it is
// dynamically linked (a cgo build, which `go run` makes where a C compiler
// is installed), its interpreter and the shared libraries it needs, each at
// the path it has on this machine. The dependencies are read from the ELF
// headers (PT_INTERP, DT_NEEDED, DT_RUNPATH), never by running ldd, so a
// binary for this machine is all it takes. A static binary needs nothing
// more, which is what release builds are.
func ELFRootfs(path string) (Rootfs, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return Rootfs{}, err
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return Rootfs{}, fmt.Errorf("%s: %w", path, ErrNotELF)
	}
	defer f.Close()
	rootfs := Rootfs{Files: []File{{Path: "/" + filepath.Base(path), Mode: 0o755, Data: bin}}}
	interp, err := interpreter(f)
	if err != nil || interp == "" {
		return rootfs, err
	}
	r := resolver{class: f.Class, machine: f.Machine, seen: map[string]bool{}}
	r.dirs = append(libSearchDirs("/etc/ld.so.conf"), filepath.Dir(interp), "/lib64", "/usr/lib64", "/lib", "/usr/lib")
	if err := r.add(interp, 0o755); err != nil {
		return Rootfs{}, fmt.Errorf("interpreter: %w", err)
	}
	if err := r.needs(f, path); err != nil {
		return Rootfs{}, err
	}
	rootfs.Files = append(rootfs.Files, r.files...)
	rootfs.LibDirs = r.libDirs
	return rootfs, nil
}

// interpreter is the PT_INTERP path, "" for a static binary.
func interpreter(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", fmt.Errorf("read PT_INTERP: %w", err)
		}
		return string(bytes.TrimRight(b, "\x00")), nil
	}
	return "", nil
}

// resolver collects the closure of an object's DT_NEEDED libraries the way
// the dynamic loader finds them: DT_RPATH or DT_RUNPATH, then the
// ld.so.conf directories, then the default ones, taking the first file of
// the binary's class and machine (a 32-bit libc in /lib does not count).
type resolver struct {
	class   elf.Class
	machine elf.Machine
	dirs    []string
	seen    map[string]bool
	files   []File
	libDirs []string
}

func (r *resolver) needs(f *elf.File, path string) error {
	names, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: DT_NEEDED: %w", path, err)
	}
	own := runPaths(f, filepath.Dir(path))
	for _, name := range names {
		lib, lf, err := r.find(name, own)
		if err != nil {
			return fmt.Errorf("%s needs %s: %w", path, name, err)
		}
		if r.seen[lib] {
			lf.Close()
			continue
		}
		err = r.add(lib, 0o644)
		if err == nil {
			err = r.needs(lf, lib)
		}
		lf.Close()
		if err != nil {
			return err
		}
		if d := filepath.Dir(lib); !slices.Contains(r.libDirs, d) {
			r.libDirs = append(r.libDirs, d)
		}
	}
	return nil
}

func (r *resolver) find(name string, own []string) (string, *elf.File, error) {
	candidates := []string{name}
	if !strings.Contains(name, "/") {
		candidates = candidates[:0]
		for _, d := range slices.Concat(own, r.dirs) {
			candidates = append(candidates, filepath.Join(d, name))
		}
	}
	for _, c := range candidates {
		lf, err := elf.Open(c)
		if err != nil {
			continue
		}
		if lf.Class == r.class && lf.Machine == r.machine {
			return c, lf, nil
		}
		lf.Close()
	}
	return "", nil, fmt.Errorf("not found for %s/%s in %s", r.class, r.machine, strings.Join(slices.Concat(own, r.dirs), ":"))
}

// add records the file at path, following symlinks for its content but
// keeping the path the loader asks for.
func (r *resolver) add(path string, mode int64) error {
	r.seen[path] = true
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	r.files = append(r.files, File{Path: path, Mode: mode, Data: data})
	return nil
}

// runPaths are an object's own search directories: DT_RUNPATH, or
// DT_RPATH when it has none, with $ORIGIN expanded.
func runPaths(f *elf.File, origin string) []string {
	paths, _ := f.DynString(elf.DT_RUNPATH)
	if len(paths) == 0 {
		paths, _ = f.DynString(elf.DT_RPATH)
	}
	var dirs []string
	for _, p := range paths {
		for d := range strings.SplitSeq(p, ":") {
			d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", origin), "$ORIGIN", origin)
			if d != "" {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

// libSearchDirs are the directories an ld.so.conf at conf names,
// following its include lines, in order.
func libSearchDirs(conf string) []string {
	var dirs []string
	seen := map[string]bool{}
	var read func(path string, depth int)
	read = func(path string, depth int) {
		if depth > 8 || seen[path] {
			return
		}
		seen[path] = true
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), "#")
			line = strings.TrimSpace(line)
			if pattern, ok := strings.CutPrefix(line, "include "); ok {
				pattern = strings.TrimSpace(pattern)
				if !filepath.IsAbs(pattern) {
					pattern = filepath.Join(filepath.Dir(path), pattern)
				}
				matches, _ := filepath.Glob(pattern)
				for _, m := range matches {
					read(m, depth+1)
				}
				continue
			}
			if filepath.IsAbs(line) && !slices.Contains(dirs, line) {
				dirs = append(dirs, line)
			}
		}
	}
	read(conf, 0)
	return dirs
}
