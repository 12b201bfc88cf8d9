package haproxy

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Server is one server of an HAProxy backend as the Runtime API shows it.
type Server struct {
	ID       int
	Name     string
	Addr     netip.Addr // invalid when HAProxy shows none
	Port     int
	OpState  int // 0 stopped, 1 starting, 2 running, 3 stopping
	Admin    AdminState
	Weight   int // the user weight (uweight), 0-256
	Sessions int // current sessions (scur of show stat); -1 when unknown
}

// AdminState is srv_admin_state of show servers state: a set of flags.
type AdminState int

// The flags of HAProxy's src/server.h (SRV_ADMF_*).
const (
	AdminForcedMaint   AdminState = 0x01 // set server state maint
	AdminInheritMaint  AdminState = 0x02 // tracks a server in maintenance
	AdminConfigMaint   AdminState = 0x04 // "disabled" in the configuration
	AdminForcedDrain   AdminState = 0x08 // set server state drain
	AdminInheritDrain  AdminState = 0x10
	AdminResolvMaint   AdminState = 0x20 // its name did not resolve
	AdminHostnameMaint AdminState = 0x40 // a template server with no name yet
)

// Maint reports whether the server takes no traffic at all. The
// configuration's "disabled" flag stays set after set server state ready,
// so it alone does not count.
func (a AdminState) Maint() bool {
	return a&(AdminForcedMaint|AdminInheritMaint|AdminResolvMaint|AdminHostnameMaint) != 0
}

// Drain reports whether the server takes no new sessions.
func (a AdminState) Drain() bool { return a&(AdminForcedDrain|AdminInheritDrain) != 0 }

func (s Server) state() string {
	switch {
	case s.Admin.Maint():
		return "maint"
	case s.Admin.Drain():
		return "drain"
	}
	return "ready"
}

// ErrParse marks Runtime API output this package cannot read.
var ErrParse = errors.New("cannot read HAProxy's answer")

// parseServersState reads the answer to "show servers state [BACKEND]":
// a format version line ("1"), a header line naming the columns ("# be_id
// be_name ..."), then one line per server. Columns are found by name, so
// columns a newer HAProxy adds are ignored. Servers of every backend are
// returned, in order; Sessions is -1 (show stat has them).
func parseServersState(out string) ([]Server, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var (
		cols    map[string]int
		servers []Server
		version bool
	)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			continue
		case !version:
			if line != "1" {
				return nil, fmt.Errorf("%w: show servers state: format %q, want 1 (HAProxy 1.8 or newer)", ErrParse, line)
			}
			version = true
			continue
		case cols == nil:
			h, ok := strings.CutPrefix(line, "#")
			if !ok {
				return nil, fmt.Errorf("%w: show servers state: line %d: want the column header, got %q", ErrParse, n, line)
			}
			cols = map[string]int{}
			for i, name := range strings.Fields(h) {
				cols[name] = i
			}
			for _, need := range []string{"be_name", "srv_id", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state", "srv_uweight", "srv_port"} {
				if _, ok := cols[need]; !ok {
					return nil, fmt.Errorf("%w: show servers state: no column %s in the header", ErrParse, need)
				}
			}
			continue
		}
		s, err := parseServerLine(strings.Fields(line), cols)
		if err != nil {
			return nil, fmt.Errorf("%w: show servers state: line %d: %v", ErrParse, n, err)
		}
		servers = append(servers, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: show servers state: %v", ErrParse, err)
	}
	if cols == nil {
		return nil, fmt.Errorf("%w: show servers state: no column header in %q", ErrParse, abbrev(out))
	}
	return servers, nil
}

// parseServerLine reads the fields of one server line.
func parseServerLine(f []string, cols map[string]int) (Server, error) {
	get := func(name string) (string, error) {
		i := cols[name]
		if i >= len(f) {
			return "", fmt.Errorf("%d columns, no %s", len(f), name)
		}
		return f[i], nil
	}
	num := func(name string, lo, hi int) (int, error) {
		v, err := get(name)
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%s %q: want a number %d-%d", name, v, lo, hi)
		}
		return n, nil
	}
	var s Server
	var err error
	if s.Name, err = get("srv_name"); err != nil {
		return s, err
	}
	if s.ID, err = num("srv_id", 0, 1<<31-1); err != nil {
		return s, err
	}
	if s.OpState, err = num("srv_op_state", 0, 3); err != nil {
		return s, err
	}
	admin, err := num("srv_admin_state", 0, 0xff)
	if err != nil {
		return s, err
	}
	s.Admin = AdminState(admin)
	if s.Weight, err = num("srv_uweight", 0, 256); err != nil {
		return s, err
	}
	if s.Port, err = num("srv_port", 0, 65535); err != nil {
		return s, err
	}
	addr, err := get("srv_addr")
	if err != nil {
		return s, err
	}
	if addr != "-" {
		if s.Addr, err = netip.ParseAddr(addr); err != nil {
			return s, fmt.Errorf("srv_addr %q: not an IP address", addr)
		}
	}
	s.Sessions = -1
	return s, nil
}

// parseSessions reads the current sessions of each server (by name) from
// the CSV answer to "show stat": a "# pxname,svname,..." header, then a
// line per proxy, server, frontend and backend. Only the servers of
// backend are returned.
func parseSessions(out, backend string) (map[string]int, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var px, sv, scur = -1, -1, -1
	got := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if h, ok := strings.CutPrefix(line, "#"); ok && scur < 0 {
			for i, name := range strings.Split(strings.TrimSpace(h), ",") {
				switch name {
				case "pxname":
					px = i
				case "svname":
					sv = i
				case "scur":
					scur = i
				}
			}
			if px < 0 || sv < 0 || scur < 0 {
				return nil, fmt.Errorf("%w: show stat: no pxname, svname or scur column", ErrParse)
			}
			continue
		}
		if scur < 0 {
			return nil, fmt.Errorf("%w: show stat: line %d before the column header", ErrParse, n)
		}
		f := strings.Split(line, ",")
		if len(f) <= max(px, sv, scur) {
			return nil, fmt.Errorf("%w: show stat: line %d has %d columns", ErrParse, n, len(f))
		}
		if f[px] != backend || f[sv] == "BACKEND" || f[sv] == "FRONTEND" {
			continue
		}
		v, err := strconv.Atoi(f[scur])
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%w: show stat: line %d: scur %q is not a count", ErrParse, n, f[scur])
		}
		got[f[sv]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: show stat: %v", ErrParse, err)
	}
	if scur < 0 {
		return nil, fmt.Errorf("%w: show stat: no column header in %q", ErrParse, abbrev(out))
	}
	return got, nil
}

// abbrev shortens an answer quoted in an error.
func abbrev(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
