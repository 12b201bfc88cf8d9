package haproxy

import (
	"errors"
	"strings"
	"testing"
)

// showServersState is HAProxy 2.6.12's answer, as Debian 12 ships it.
const showServersState = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 be 1 hoist1 127.0.0.1 2 12 50 100 0 1 0 2 6 0 0 0 - 18080 - 0 0 - - 0
3 be 2 hoist2 ::1 0 5 100 100 65 1 0 0 14 0 0 0 - 1 - 0 0 - - 0

`

func TestParseServersState(t *testing.T) {
	got, err := parseServersState(showServersState)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d servers: %+v", len(got), got)
	}
	s := got[0]
	if s.Name != "hoist1" || s.ID != 1 || s.Addr.String() != "127.0.0.1" || s.Port != 18080 || s.OpState != 2 || s.Weight != 50 || s.Sessions != -1 {
		t.Errorf("hoist1 = %+v", s)
	}
	if s.Admin.Maint() || !s.Admin.Drain() || s.state() != "drain" {
		t.Errorf("admin 12 (configured disabled, then set ready and drained): maint %v drain %v", s.Admin.Maint(), s.Admin.Drain())
	}
	if !got[1].Admin.Maint() || got[1].Addr.String() != "::1" {
		t.Errorf("hoist2 = %+v", got[1])
	}
}

func TestParseServersStateRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":      "",
		"version":    "2\n# be_id\n",
		"no header":  "1\n3 be 1 hoist1 127.0.0.1 2 12 50 100\n",
		"no column":  "1\n# be_id be_name srv_id\n",
		"short line": strings.Replace(showServersState, "3 be 2 hoist2 ::1 0 5 100", "3 be 2", 1),
		"bad addr":   strings.Replace(showServersState, "::1", "nowhere", 1),
		"bad weight": strings.Replace(showServersState, "2 12 50", "2 12 999", 1),
		"error text": "Can't find backend.\n",
	} {
		if _, err := parseServersState(in); !errors.Is(err, ErrParse) {
			t.Errorf("%s: err = %v, want ErrParse", name, err)
		}
	}
}

func TestParseSessions(t *testing.T) {
	in := "# pxname,svname,qcur,qmax,scur,smax\nbe,hoist1,0,0,3,5\nbe,hoist2,0,0,0,0\nbe,BACKEND,0,0,3,5\nother,x,0,0,9,9\n\n"
	got, err := parseSessions(in, "be")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["hoist1"] != 3 || got["hoist2"] != 0 {
		t.Errorf("got %v", got)
	}
	if _, err := parseSessions("be,hoist1,0,0,3\n", "be"); !errors.Is(err, ErrParse) {
		t.Errorf("no header: err = %v", err)
	}
}

// FuzzParseServersState feeds the parser any answer: it never panics, and
// what it accepts is within HAProxy's ranges.
func FuzzParseServersState(f *testing.F) {
	f.Add(showServersState)
	f.Add("1\n# srv_name srv_id srv_addr srv_op_state srv_admin_state srv_uweight srv_port be_name\nx 1 - 0 0 0 0 b\n")
	f.Add("Can't find backend.\n")
	f.Fuzz(func(t *testing.T, in string) {
		servers, err := parseServersState(in)
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("error not marked ErrParse: %v", err)
			}
			return
		}
		for _, s := range servers {
			if s.Name == "" || s.Weight < 0 || s.Weight > 256 || s.Port < 0 || s.Port > 65535 || s.OpState < 0 || s.OpState > 3 {
				t.Fatalf("accepted an impossible server %+v from %q", s, in)
			}
		}
	})
}

// FuzzParseSessions: show stat's CSV, any of it.
func FuzzParseSessions(f *testing.F) {
	f.Add("# pxname,svname,scur\nbe,hoist1,3\n", "be")
	f.Fuzz(func(t *testing.T, in, backend string) {
		got, err := parseSessions(in, backend)
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("error not marked ErrParse: %v", err)
			}
			return
		}
		for _, n := range got {
			if n < 0 {
				t.Fatalf("negative sessions from %q", in)
			}
		}
	})
}
