//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/hoist-dev/hoist/events/natsd"
)

// inprocServer starts an embedded server in this process, for -inproc-server
// runs whose CPU profiles should include the server's side.
func inprocServer(dir, name string) (string, func(), error) {
	s, err := natsd.Start(natsd.Config{Name: name, DataDir: filepath.Join(dir, name+"-data"), Listen: "127.0.0.1:0"})
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitJetStream(ctx); err != nil {
		s.Shutdown()
		return "", nil, err
	}
	return s.ClientURL(), s.Shutdown, nil
}

// natsServer is the server of a phase: a `hoist server` child process, or
// with -inproc-server an embedded one (then pid is this process's).
func (e *env) natsServer(name string) (*server, func(), error) {
	srv, err := startServer(e.bin, e.dir, name)
	if err != nil {
		return nil, nil, err
	}
	if !e.opts.inproc {
		return srv, srv.stop, nil
	}
	srv.stop()
	url, stop, err := inprocServer(e.dir, name+"-inproc")
	if err != nil {
		return nil, nil, err
	}
	return &server{proc: srv.proc, url: url, data: filepath.Join(e.dir, name+"-inproc-data"), pidv: os.Getpid()}, stop, nil
}
