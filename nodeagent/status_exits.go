package nodeagent

import (
	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
)

// exitNotes keep, per replica slot, the last replica that exited on its
// own and was removed (and its logs with it, on Docker), so that `hoist
// status SCOPE` says why its replacement is there: the replacement's
// Detail reads "replaces 1a2b3c4d5e6f, which exited (exit code 3); last
// output: …". A note lasts as long as the replacement it is bound to.
type exitNotes map[exitSlot]*exitNote

type exitSlot struct {
	canary bool
	index  int
}

type exitNote struct {
	exit deploy.Exit
	by   string // the ID of the replica that took the slot; "" until one does
}

// show records exits and writes each note into the Detail of its slot's
// replacement among replicas, when that has no detail of its own. A note
// whose replacement is gone is dropped.
func (n *exitNotes) show(exits []deploy.Exit, replicas []events.ReplicaStatus) {
	if *n == nil {
		if len(exits) == 0 {
			return
		}
		*n = exitNotes{}
	}
	for _, e := range exits {
		(*n)[exitSlot{e.Track == deploy.TrackCanary, e.Index}] = &exitNote{exit: e}
	}
	for k, note := range *n {
		bound := false
		for i := range replicas {
			r := &replicas[i]
			if r.Canary != k.canary || r.Index != k.index || r.ID == note.exit.ID {
				continue
			}
			if note.by == "" {
				note.by = r.ID
			}
			if r.ID != note.by {
				continue
			}
			bound = true
			if r.Detail == "" {
				r.Detail = "replaces " + deploy.ShortID(note.exit.ID) + ", which " + note.exit.Summary()
			}
		}
		if note.by != "" && !bound {
			delete(*n, k)
		}
	}
}
