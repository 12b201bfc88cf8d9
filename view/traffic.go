package view

import (
	"strconv"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// describeTraffic says what a pause, resume or maintenance event changed,
// e.g. `paused (each request held at most 30s): "db migration"`.
func describeTraffic(e *events.Event) (string, bool) {
	switch d := e.Data.(type) {
	case *events.Paused:
		s := "paused (each request held at most " + time.Duration(d.Max).String() + ")"
		if d.Reason != "" {
			s += ": " + strconv.Quote(d.Reason)
		}
		return s, true
	case *events.Resumed:
		return "resumed: held requests released", true
	case *events.MaintenanceOn:
		if d.Message == "" {
			return "maintenance page on", true
		}
		return "maintenance page on: " + strconv.Quote(d.Message), true
	case *events.MaintenanceOff:
		return "maintenance page off", true
	}
	return "", false
}
