package api

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hoist-dev/hoist/events/store"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/view"
)

// diffJSON is GET /v1/scopes/{scope}/diff: what differs between the
// desired states after two revisions, field by field.
type diffJSON struct {
	Scope   string       `json:"scope"`
	From    uint64       `json:"from"`
	To      uint64       `json:"to"`
	Changes []fieldDelta `json:"changes"`
}

// fieldDelta is one field that differs; From or To is "" when the field
// is not set on that side.
type fieldDelta struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// diffOf compares the states of h, the fold of hist, after revisions from
// and to (0: the head).
func diffOf(h *projector.History, hist *store.History, from, to uint64) (diffJSON, error) {
	a, err := stateAt(h, hist, from, "from")
	if err != nil {
		return diffJSON{}, err
	}
	b, err := stateAt(h, hist, to, "to")
	if err != nil {
		return diffJSON{}, err
	}
	return diffJSON{Scope: h.State().Scope.String(), From: a.Revision, To: b.Revision, Changes: diffFields(fields(a), fields(b))}, nil
}

// fields flattens a state into named values, as the dashboard and the
// diff show them: masked, and secrets by name and key version only.
func fields(st projector.State) map[string]string {
	v := view.NewState(st, false)
	out := map[string]string{}
	set := func(k, val string) {
		if val != "" {
			out[k] = val
		}
	}
	if st.Spec == nil {
		return out
	}
	set("image", v.Image)
	set("command", view.JoinArgs(v.Command))
	set("replicas", fmt.Sprint(v.Replicas))
	if v.Port != 0 {
		set("port", fmt.Sprint(v.Port))
	}
	for k, val := range v.Env {
		set("env "+k, val)
	}
	for k, sec := range v.Secrets {
		as := ""
		if sec.File != "" {
			as = " as " + sec.File
		}
		set("secret "+k, fmt.Sprintf("sealed, key v%d%s", sec.Key, as))
	}
	set("hosts", strings.Join(v.Hosts, " "))
	set("health_path", v.HealthPath)
	set("surge", fmt.Sprint(v.Surge))
	set("health_timeout", v.HealthTimeout.String())
	set("restart", v.Restart)
	if v.MemoryMB != 0 {
		set("memory_mb", fmt.Sprint(v.MemoryMB))
	}
	if v.CPUs != 0 {
		set("cpus", fmt.Sprint(v.CPUs))
	}
	if v.Cache != nil {
		set("cache", fmt.Sprintf("ttl %s, max %d bytes", v.Cache.TTL, v.Cache.MaxBytes))
	}
	if v.Removed {
		set("removed", "yes")
	}
	return out
}

func diffFields(a, b map[string]string) []fieldDelta {
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := []fieldDelta{}
	for _, k := range keys {
		if a[k] != b[k] {
			out = append(out, fieldDelta{Field: k, From: a[k], To: b[k]})
		}
	}
	return out
}
