package balancer

import (
	"errors"
	"slices"
	"testing"
)

func TestActivationNames(t *testing.T) {
	for _, tc := range []struct {
		pid, fds, names string
		want            []string
		err             error // nil: any error when want is nil
	}{
		{pid: "", fds: "", err: ErrNotActivated},
		{pid: "41", fds: "1", err: ErrNotActivated}, // our parent's
		{pid: "42", fds: "1", want: []string{"http"}},
		{pid: "42", fds: "3", want: []string{"http", "https", "metrics"}},
		{pid: "42", fds: "2", names: "metrics:http", want: []string{"metrics", "http"}},
		{pid: "42", fds: "2", names: "metrics:unknown", want: []string{"metrics", "http"}},
		{pid: "42", fds: "3", names: ":https:", want: []string{"http", "https", "metrics"}},
		{pid: "42", fds: "0"},
		{pid: "42", fds: "x"},
		{pid: "42", fds: "4"},
		{pid: "42", fds: "2", names: "http"},
		{pid: "42", fds: "2", names: "http:http"},
		{pid: "42", fds: "2", names: "hoist-balancer.socket:hoist-balancer.socket", want: []string{"http", "https"}},
		{pid: "42", fds: "2", names: "x:https", want: []string{"http", "https"}},
	} {
		got, err := activationNames(42, tc.pid, tc.fds, tc.names)
		switch {
		case tc.want != nil && (err != nil || !slices.Equal(got, tc.want)):
			t.Errorf("%+v: got %v, %v; want %v", tc, got, err, tc.want)
		case tc.want == nil && tc.err != nil && !errors.Is(err, tc.err):
			t.Errorf("%+v: got %v, %v; want %v", tc, got, err, tc.err)
		case tc.want == nil && err == nil:
			t.Errorf("%+v: got %v, want an error", tc, got)
		}
	}
}
