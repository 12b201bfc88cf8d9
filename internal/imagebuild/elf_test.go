package imagebuild

import (
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestELFRootfs reads the test binary itself: a cgo build (where a C
// compiler is installed) brings its interpreter and libc, each at the path
// the loader asks for; a static one is alone.
func TestELFRootfs(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rootfs, err := ELFRootfs(exe)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rootfs.Files[0].Path, "/"+filepath.Base(exe); got != want || rootfs.Files[0].Mode != 0o755 {
		t.Fatalf("first file = %s %o, want the binary at %s 0755", got, rootfs.Files[0].Mode, want)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	interp, err := interpreter(f)
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, len(rootfs.Files))
	for i, file := range rootfs.Files {
		paths[i] = file.Path
		if len(file.Data) == 0 {
			t.Errorf("%s is empty", file.Path)
		}
	}
	if interp == "" {
		if len(rootfs.Files) != 1 || len(rootfs.LibDirs) != 0 {
			t.Fatalf("static binary: files %v, lib dirs %v; want the binary alone", paths, rootfs.LibDirs)
		}
		t.Log("the test binary is static; only the static case was checked")
		return
	}
	if !slices.Contains(paths, interp) {
		t.Errorf("files %v lack the interpreter %s", paths, interp)
	}
	needed, _ := f.ImportedLibraries()
	for _, n := range needed {
		if !slices.ContainsFunc(paths, func(p string) bool { return filepath.Base(p) == n }) {
			t.Errorf("files %v lack %s (DT_NEEDED)", paths, n)
		}
	}
	if len(rootfs.LibDirs) == 0 {
		t.Errorf("no lib dirs for LD_LIBRARY_PATH")
	}
}

func TestELFRootfsNotELF(t *testing.T) {
	p := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ELFRootfs(p); !errors.Is(err, ErrNotELF) {
		t.Fatalf("err = %v, want ErrNotELF", err)
	}
}

func TestLibSearchDirs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ld.so.conf", "/opt/first\ninclude ld.so.conf.d/*.conf\n# a comment\n/opt/last # trailing\nrelative/ignored\n")
	write("ld.so.conf.d/a.conf", "/usr/local/lib\n/opt/first\n")
	write("ld.so.conf.d/b.conf", "include ../ld.so.conf\n/lib/x86_64-linux-gnu\n")
	got := libSearchDirs(filepath.Join(dir, "ld.so.conf"))
	want := []string{"/opt/first", "/usr/local/lib", "/lib/x86_64-linux-gnu", "/opt/last"}
	if !slices.Equal(got, want) {
		t.Fatalf("dirs = %v, want %v", got, want)
	}
}
