//go:build !windows

package natsd

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// A client port in use fails Start at once with the kernel's reason,
// where nats-server alone would leave it to a 10 s readiness wait.
func TestStartServerPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv, err := Start(Config{DataDir: t.TempDir(), Listen: ln.Addr().String()})
	if err == nil {
		srv.Shutdown()
		t.Fatal("started on a port in use")
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("err = %v, want EADDRINUSE", err)
	}
	t.Log(err)
}
