package main

import (
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hoist-dev/hoist/change"
	"github.com/hoist-dev/hoist/events"
)

// pause, resume and maintenance: what balancers do with a scope's
// requests. Each is a revision of the scope, so the log says who paused
// it and why, and every balancer does the same (agents hand the standing
// pause and page on to them in their backends reports).

func pauseCommand() *cli.Command {
	return &cli.Command{
		Name:      "pause",
		Category:  "publish",
		Usage:     "hold a scope's new requests at the balancers until 'hoist resume'",
		ArgsUsage: "SCOPE [--max D] [--reason TEXT]",
		Description: `Publishes a "paused" event. Balancers hold the scope's new requests in a queue
(bounded by 'hoist balancer --pause-queue') instead of sending them to a backend;
requests already at a backend finish there. Each held request waits at most
--max from its arrival, then gets 503 with Retry-After. 'hoist resume' sends the
held requests on, in the order they came, to the backends the scope has then:
pause, deploy (a migration, say), resume within --max, and no client sees the gap.

The pause stands until 'hoist resume': a balancer that restarts meanwhile holds
again. --max is 100ms-1h.

Example:
   hoist pause acme.prod.web --max 20s --reason "db migration"
   hoist deploy acme.prod.web --image web:2 && hoist wait acme.prod.web
   hoist resume acme.prod.web`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "max", Value: events.DefaultPauseMax.String(), Usage: "hold each request at most `D` (100ms-1h), then answer 503"},
			&cli.StringFlag{Name: "reason", Usage: "why, for 'hoist log' (`TEXT`, at most 256 characters)"},
			expectRevisionFlag(),
			jsonFlag(),
		},
		Action: pauseAction,
	}
}

func pauseAction(c *cli.Context) error {
	a, err := args(c, 1, 1, "SCOPE [--max D] [--reason TEXT]")
	if err != nil {
		return err
	}
	scope, err := parseScope(a[0])
	if err != nil {
		return err
	}
	max, err := parsePauseMax(c.String("max"))
	if err != nil {
		return err
	}
	build, err := change.Pause(scope, max, c.String("reason"))
	if err != nil {
		return err
	}
	ev, err := publishScope(c, scope, build)
	if err != nil {
		return err
	}
	return printPublished(c, ev, summarize(ev))
}

// parsePauseMax reads --max: a Go duration within the limits of a pause.
func parsePauseMax(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < events.MinPauseMax || d > events.MaxPauseMax {
		return 0, usagef("--max %q: want a duration from %s to %s, like 30s", s, events.MinPauseMax, events.MaxPauseMax)
	}
	return d, nil
}

func resumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "resume",
		Category:  "publish",
		Usage:     "end a scope's pause: held requests go on, in the order they came",
		ArgsUsage: "SCOPE",
		Description: `Publishes a "resumed" event. Refused (exit 2) when the scope is not paused.

Example:
   hoist resume acme.prod.web`,
		Flags:  []cli.Flag{expectRevisionFlag(), jsonFlag()},
		Action: resumeAction,
	}
}

var resumeAction = publishOnScope(change.Resume)

func maintenanceCommand() *cli.Command {
	return &cli.Command{
		Name:      "maintenance",
		Category:  "publish",
		Usage:     "answer every request of a scope with a maintenance page (503), or stop",
		ArgsUsage: "SCOPE on|off [--message TEXT]",
		Description: `"on" publishes a "maintenance_on" event: balancers answer each new request of
the scope 503 with Retry-After and a page that shows --message (HTML for
browsers, JSON for clients that accept application/json, else plain text).
Requests already at a backend finish there. A maintenance page wins over a
pause. "on" again replaces the message. "off" publishes "maintenance_off" and
is refused (exit 2) when no page is up.

Example:
   hoist maintenance acme.prod.web on --message "Back at 10:00 UTC."
   hoist maintenance acme.prod.web off`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "message", Usage: "what the page says (`TEXT`, at most 1024 bytes; newlines kept)"},
			expectRevisionFlag(),
			jsonFlag(),
		},
		Action: maintenanceAction,
	}
}

func maintenanceAction(c *cli.Context) error {
	a, err := args(c, 2, 2, "SCOPE on|off [--message TEXT]")
	if err != nil {
		return err
	}
	scope, on, err := parseMaintenanceArgs(a, c.IsSet("message"))
	if err != nil {
		return err
	}
	build := change.MaintenanceOff(scope)
	if on {
		if build, err = change.MaintenanceOn(scope, c.String("message")); err != nil {
			return err
		}
	}
	ev, err := publishScope(c, scope, build)
	if err != nil {
		return err
	}
	return printPublished(c, ev, summarize(ev))
}

// parseMaintenanceArgs reads SCOPE on|off; a --message goes with "on" only.
func parseMaintenanceArgs(a []string, message bool) (events.Scope, bool, error) {
	if len(a) != 2 {
		return events.Scope{}, false, usagef("usage: hoist maintenance SCOPE on|off [--message TEXT]")
	}
	scope, err := parseScope(a[0])
	if err != nil {
		return events.Scope{}, false, err
	}
	switch strings.ToLower(a[1]) {
	case "on":
		return scope, true, nil
	case "off":
		if message {
			return events.Scope{}, false, usagef("--message goes with 'on': 'hoist maintenance %s off' takes the page down", scope)
		}
		return scope, false, nil
	}
	return events.Scope{}, false, usagef("maintenance %s %q: want on or off", scope, a[1])
}
