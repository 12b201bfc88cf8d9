package balancer

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/hoist-dev/hoist/events"
)

// A canary splits a scope's new requests in two steps: the side first,
// canary or stable, by smooth weighted round-robin between the canary's
// share S and the stable side's 100-S, so that over any 100 requests in a
// row the canary gets S of them, give or take one; then the backend within
// the side by the usual score-weighted round-robin. Only when both sides
// have an eligible backend is the side chosen by share: with one left, it
// takes everything, so a canary whose replicas are not up yet costs no
// request, and neither does a stable side drained for maintenance.
//
// A backend its node reports as the canary's, while the scope's traffic
// names no canary (aborted or promoted, its replicas about to stop), gets
// no new request unless no stable backend is left.
//
// With Sticky, a client keeps the side it first reached: the balancer
// sets the cookie hoist_canary=ID.c (or ID.s) on that answer and honours
// it while the canary ID runs and the side has an eligible backend. A
// cookie of another canary, or one that does not parse, is ignored and
// replaced.

// side is which of a scope's tracks a request goes to.
type side int8

const (
	sideAny side = iota // no preference: by share
	sideStable
	sideCanary
	sideRetired // a canary's backend with no canary running: for views only
)

func (s side) String() string {
	switch s {
	case sideStable:
		return "stable"
	case sideCanary:
		return "canary"
	case sideRetired:
		return "canary-ended"
	}
	return "any"
}

// has reports whether b is on side s (every backend is on sideAny).
func (s side) has(b *Backend) bool {
	switch s {
	case sideStable:
		return !b.Canary
	case sideCanary:
		return b.Canary
	}
	return true
}

// sides says which kinds of backend a pool has at all.
type sides struct{ canary bool }

func sidesOf(bs []Backend) sides {
	for i := range bs {
		if bs[i].Canary {
			return sides{canary: true}
		}
	}
	return sides{}
}

// canary is the pool's running canary, nil when there is none.
func (p *Pool) canary() *events.CanaryTraffic {
	if p.Traffic == nil {
		return nil
	}
	return p.Traffic.Canary
}

// sideOf is the side b is on, for views.
func (p *Pool) sideOf(b *Backend) side {
	switch {
	case !b.Canary:
		return sideStable
	case p.canary() == nil:
		return sideRetired
	}
	return sideCanary
}

// sideFor is the side a request that reached b is on.
func sideFor(b *Backend) side {
	if b.Canary {
		return sideCanary
	}
	return sideStable
}

// pickSide chooses the side of the next request; p.live.mu is held.
func (p *Pool) pickSide(now int64, skip *backendState, prefer side) side {
	stable, canary := p.eligible(now, skip, sideStable), p.eligible(now, skip, sideCanary)
	c := p.canary()
	switch {
	case c == nil || !canary:
		if stable || !canary {
			return sideStable
		}
		return sideCanary // nothing else is left
	case !stable:
		return sideCanary
	case prefer == sideStable || prefer == sideCanary:
		return prefer
	}
	cur := &p.live.sideCur
	cur[0] += int64(100 - c.Share)
	cur[1] += int64(c.Share)
	if cur[1] > cur[0] {
		cur[1] -= 100
		return sideCanary
	}
	cur[0] -= 100
	return sideStable
}

// Shares is each backend's expected part of the pool's new requests, by
// address, as pickSide and the weighted round-robin split them: with a
// canary and weight on both sides, its share goes to the canary's
// backends and the rest to the stable ones; else the side with weight
// takes everything (stable first). Within a side, by weight. It reads the
// table alone: a backend its balancer found dead a moment ago still
// counts.
func (p *Pool) Shares() map[string]float64 {
	var stable, canary int
	for i := range p.Backends {
		if b := &p.Backends[i]; b.Canary {
			canary += b.Weight
		} else {
			stable += b.Weight
		}
	}
	var stablePart, canaryPart float64 // of all new requests
	switch c := p.canary(); {
	case stable > 0 && canary > 0 && c != nil:
		stablePart, canaryPart = float64(100-c.Share)/100, float64(c.Share)/100
	case stable > 0:
		stablePart = 1
	case canary > 0:
		canaryPart = 1
	}
	out := make(map[string]float64, len(p.Backends))
	for _, b := range p.Backends {
		part, total := stablePart, stable
		if b.Canary {
			part, total = canaryPart, canary
		}
		out[b.Addr] = 0
		if total > 0 {
			out[b.Addr] = part * float64(b.Weight) / float64(total)
		}
	}
	return out
}

// eligible reports whether some backend on side s could take a request.
func (p *Pool) eligible(now int64, skip *backendState, s side) bool {
	for i := range p.Backends {
		b := &p.Backends[i]
		if b.Weight > 0 && b.st != skip && !b.st.dead(now) && s.has(b) {
			return true
		}
	}
	return false
}

// canaryCookie is the cookie that keeps a sticky canary's client on its
// side.
const canaryCookie = "hoist_canary"

// stickySide is the side r's cookie keeps it on for canary id, sideAny
// when it has none for that canary.
func stickySide(r *http.Request, id uint64) side {
	for _, c := range r.CookiesNamed(canaryCookie) {
		if cid, s, ok := parseCanaryCookie(c.Value); ok && cid == id {
			return s
		}
	}
	return sideAny
}

// parseCanaryCookie reads ID.c or ID.s.
func parseCanaryCookie(v string) (id uint64, s side, ok bool) {
	num, tag, found := strings.Cut(v, ".")
	if !found {
		return 0, sideAny, false
	}
	id, err := strconv.ParseUint(num, 10, 64)
	if err != nil || id == 0 || strconv.FormatUint(id, 10) != num {
		return 0, sideAny, false
	}
	switch tag {
	case "c":
		return id, sideCanary, true
	case "s":
		return id, sideStable, true
	}
	return 0, sideAny, false
}

// setCanaryCookie keeps the client on side s of canary id.
func setCanaryCookie(w http.ResponseWriter, id uint64, s side) {
	tag := "s"
	if s == sideCanary {
		tag = "c"
	}
	http.SetCookie(w, &http.Cookie{Name: canaryCookie, Value: strconv.FormatUint(id, 10) + "." + tag,
		Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
}
