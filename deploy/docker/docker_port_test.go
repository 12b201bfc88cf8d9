package docker

import (
	"errors"
	"testing"
)

func TestIsHostPortTaken(t *testing.T) {
	for _, tt := range []struct {
		msg  string
		want bool
	}{
		{"Error response from daemon: driver failed programming external connectivity on endpoint x: Error starting userland proxy: listen tcp4 127.0.0.1:33182: bind: address already in use", true},
		{"Error response from daemon: Bind for 0.0.0.0:8080 failed: port is already allocated", true},
		{"Error response from daemon: No such image: x", false},
	} {
		if got := isHostPortTaken(errors.New(tt.msg)); got != tt.want {
			t.Errorf("isHostPortTaken(%q) = %v, want %v", tt.msg, got, tt.want)
		}
	}
}
