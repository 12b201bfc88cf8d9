package view

import (
	"errors"
	"maps"
	"time"

	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/projector"
	"github.com/hoist-dev/hoist/secrets"
)

// State is 'hoist state --json' and the API's scope state. Every field is always present, with
// defaults applied, so scripts need no special cases.
type State struct {
	Scope         string              `json:"scope"`
	Revision      uint64              `json:"revision"`
	Image         string              `json:"image"`
	Command       []string            `json:"command"`
	Replicas      int                 `json:"replicas"`
	Port          int                 `json:"port"`
	Env           map[string]string   `json:"env"`
	Secrets       map[string]Secret   `json:"secrets"`
	Hosts         []string            `json:"hosts"`
	HealthPath    string              `json:"health_path"`
	Surge         int                 `json:"surge"`
	HealthTimeout events.Duration     `json:"health_timeout"`
	Restart       string              `json:"restart"`
	MemoryMB      int64               `json:"memory_mb"`
	CPUs          float64             `json:"cpus"`
	Cache         *events.CachePolicy `json:"cache"`
	Removed       bool                `json:"removed"`
	// Canary is the running canary, absent when none runs. Paused and
	// Maintenance are the standing pause and maintenance page, absent
	// when there is none.
	Canary      *Canary             `json:"canary,omitempty"`
	Paused      *events.Pause       `json:"paused,omitempty"`
	Maintenance *events.Maintenance `json:"maintenance,omitempty"`
	Time        time.Time           `json:"time"`
	Actor       string              `json:"actor"`
}

// Secret is a secret as 'hoist state --json' shows it: never its
// value, sealed or not.
type Secret struct {
	Key  int    `json:"key"`
	File string `json:"file,omitempty"`
}

// MaskPayload returns p with the plain env values that look secret masked,
// for printing. p itself is not changed.
func MaskPayload(p events.Payload) events.Payload {
	switch d := p.(type) {
	case *events.EnvChanged:
		if masked, ok := secrets.MaskEnv(d.Set); ok {
			return &events.EnvChanged{Set: masked, Unset: d.Unset}
		}
	case *events.Deployed:
		if masked, ok := secrets.MaskEnv(d.Spec.Env); ok {
			spec := d.Spec.Clone()
			spec.Env = masked
			return &events.Deployed{Spec: *spec}
		}
	}
	return p
}

func NewState(st projector.State, show bool) State {
	out := State{
		Scope: st.Scope.String(), Revision: st.Revision, Removed: st.Removed,
		Time: st.Time, Actor: st.Actor,
		Command: []string{}, Env: map[string]string{}, Hosts: []string{},
		Secrets: map[string]Secret{},
	}
	s := st.Spec
	if s == nil {
		return out
	}
	out.Image, out.Replicas, out.Port, out.HealthPath = s.Image, s.Replicas, s.Port, s.HealthPath
	out.Command = append(out.Command, s.Command...)
	out.Hosts = append(out.Hosts, s.Hosts...)
	env := s.Env
	if !show {
		env, _ = secrets.MaskEnv(env)
	}
	maps.Copy(out.Env, env)
	for name, sec := range s.Secrets {
		out.Secrets[name] = Secret{Key: sec.Key, File: sec.File}
	}
	out.Surge = s.EffectiveSurge()
	out.HealthTimeout = events.Duration(s.EffectiveHealthTimeout())
	out.Restart, out.MemoryMB, out.CPUs, out.Cache = s.Restart, s.MemoryMB, s.CPUs, s.Cache
	out.Canary = NewCanary(st.Canary)
	out.Paused, out.Maintenance = st.Paused, st.Maintenance
	return out
}

// LogEntry is one element of 'hoist log --json' and of the API's log: every message of the
// scope's history, each at its revision. A rejected one has no data and
// says why in "rejected"; its kind and actor are what its subject says, and
// its time is when the server stored it.
type LogEntry struct {
	Revision uint64         `json:"revision"`
	Kind     events.Kind    `json:"kind,omitempty"`
	Time     time.Time      `json:"time"`
	Actor    string         `json:"actor,omitempty"`
	Data     events.Payload `json:"data,omitempty"`
	Rejected string         `json:"rejected,omitempty"`
	// Skipped says why an event that was read could not be applied (a
	// scope key from an actor no grant names, a scale before any deploy):
	// it holds its revision and changes nothing, for every reader alike.
	Skipped  string `json:"skipped,omitempty"`
	Sequence uint64 `json:"sequence"`
	Subject  string `json:"subject"`
}

// LogEntries is a scope's history as 'hoist log' shows it: every message
// at its revision, the rejected ones and the ones the fold skips marked
// with why.
func LogEntries(scope events.Scope, recs []events.Record) []LogEntry {
	_, skips := projector.Fold(scope, recs)
	skipped := make(map[uint64]string, len(skips))
	for _, s := range skips {
		skipped[s.Revision] = s.Reason
	}
	out := make([]LogEntry, len(recs))
	for i, r := range recs {
		out[i] = NewLogEntry(r)
		if r.Err == nil {
			out[i].Skipped = skipped[r.Revision]
		}
	}
	return out
}

func NewLogEntry(r events.Record) LogEntry {
	e := LogEntry{Revision: r.Revision, Kind: r.Kind, Time: r.Message.Time, Actor: r.Actor, Sequence: r.Sequence, Subject: r.Subject}
	if r.Err != nil {
		var rej *events.Rejection
		e.Rejected = r.Err.Error()
		if errors.As(r.Err, &rej) {
			e.Rejected = rej.Reason.Error()
		}
		return e
	}
	e.Kind, e.Time, e.Actor, e.Data = r.Event.Kind, r.Event.Time, r.Event.Actor, r.Event.Data
	return e
}

// Published is a stored event as a publish shows it: what 'hoist deploy
// … --json' prints, and the API's answer to a write (with a Summary).
type Published struct {
	Scope    string         `json:"scope,omitempty"`
	Node     string         `json:"node,omitempty"`
	Revision uint64         `json:"revision,omitempty"`
	Kind     events.Kind    `json:"kind"`
	ID       string         `json:"id"`
	Time     time.Time      `json:"time"`
	Actor    string         `json:"actor"`
	Data     events.Payload `json:"data"`
	Summary  string         `json:"summary,omitempty"`
}
