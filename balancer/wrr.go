package balancer

// pick chooses the next backend of p (see pickFor), with no preference of
// side.
func (p *Pool) pick(now int64, skip *backendState) int { return p.pickFor(now, skip, sideAny) }

// pickFor chooses the next backend of p: first the side, stable or canary
// (see pickSide; prefer is a sticky client's side), then the backend
// within the side by smooth weighted round-robin (see doc.go), skipping
// backends with weight 0, backends marked dead at now (unix nanos), and
// skip (the one a retry must avoid). It returns -1 when no backend is
// eligible. It allocates nothing.
func (p *Pool) pickFor(now int64, skip *backendState, prefer side) int {
	l := p.live
	l.mu.Lock()
	s := sideAny
	if p.sides.canary {
		s = p.pickSide(now, skip, prefer)
	}
	best, total := -1, int64(0)
	var bestCur int64
	for i := range p.Backends {
		b := &p.Backends[i]
		if b.Weight <= 0 || b.st == skip || b.st.dead(now) || !s.has(b) {
			continue
		}
		w := int64(b.Weight)
		b.st.current += w
		total += w
		if best < 0 || b.st.current > bestCur {
			best, bestCur = i, b.st.current
		}
	}
	if best >= 0 {
		p.Backends[best].st.current -= total
	}
	l.mu.Unlock()
	return best
}

// Pick chooses a backend as a request would, and returns its address ("" when
// none is eligible). It is exported for benchmarks and tools; requests use
// the same path.
func (p *Pool) Pick(now int64) string {
	i := p.pick(now, nil)
	if i < 0 {
		return ""
	}
	return p.Backends[i].Addr
}

// anyAlive reports whether some backend could take a request.
func (p *Pool) anyAlive(now int64) bool {
	for i := range p.Backends {
		b := &p.Backends[i]
		if b.Weight > 0 && !b.st.dead(now) {
			return true
		}
	}
	return false
}
