package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hoist-dev/hoist/events"
)

// DefaultAgentCheck is where the HAProxy agent-check listener binds by
// default: HAProxy's customary agent port, on loopback for development.
// Production nodes bind the address HAProxy reaches, e.g. 0.0.0.0:9777.
const DefaultAgentCheck = "127.0.0.1:9777"

// payloadWait bounds how long a connection may take to send its payload.
// HAProxy sends one only with agent-send, so the answer never waits longer.
const payloadWait = 100 * time.Millisecond

// checkView is the state an agent-check answer is derived from.
type checkView struct {
	Node        string
	Drained     bool
	DrainReason string
	Scopes      []checkScope
}

type checkScope struct {
	Scope    events.Scope
	Phase    events.Phase
	Reason   string
	Replicas []checkReplica
	Scores   map[string]int // backend → score 0-100
}

type checkReplica struct {
	Index   int
	Canary  bool   // Index is the canary's
	Backend string // advertise:hostport, "" without a port
	Healthy bool
	State   string
}

// answer is the agent-check reply to payload, one line with its newline:
//
//   - the node is drained: "drain";
//   - payload host:port: that replica's health, its score as the weight
//     ("ready up 80%"), or "down #why";
//   - payload SCOPE@NODE#INDEX (a slot; NODE#cINDEX for a canary's): the
//     replica that serves the slot now, whatever its port, as for host:port;
//   - payload client.environment.solution: that scope on this node, up with
//     the mean score of its healthy replicas while any is healthy (old ones
//     keep serving a failed rollout), else "down #why";
//   - anything else (usually nothing): the node, "ready up 100%" unless
//     every scope is failing.
func answer(v checkView, payload string) string {
	payload = strings.TrimSpace(payload)
	if v.Drained {
		return "drain\n"
	}
	if _, port, err := net.SplitHostPort(payload); err == nil && port != "" {
		if _, perr := strconv.Atoi(port); perr == nil {
			return answerBackend(v, payload, port)
		}
	}
	if scope, slot, ok := strings.Cut(payload, "@"); ok {
		return answerSlot(v, scope, slot)
	}
	if sc, err := events.ParseScope(payload); err == nil {
		for _, cs := range v.Scopes {
			if cs.Scope == sc {
				return answerScope(cs)
			}
		}
		return down(fmt.Sprintf("scope %s is not served by node %s", sc, v.Node))
	}
	return answerNode(v)
}

func answerBackend(v checkView, addr, port string) string {
	cs, rep, ok := findBackend(v, addr, port)
	if !ok {
		return down(fmt.Sprintf("no replica at %s on node %s", addr, v.Node))
	}
	if !rep.Healthy || rep.State != "running" {
		return down(fmt.Sprintf("replica %d of %s is %s and not healthy", rep.Index, cs.Scope, rep.State))
	}
	return up(score(cs, rep.Backend))
}

// answerSlot answers for the replica at slot (NODE#INDEX) of scope: the
// one a rollout's new replica takes over, so that an agent-send line in
// HAProxy names what it checks across rollouts.
func answerSlot(v checkView, scope, slot string) string {
	sc, err := events.ParseScope(scope)
	node, index, canary, ok := events.ParseSlot(slot)
	if err != nil || !ok {
		return down(fmt.Sprintf("%q is not SCOPE@NODE#INDEX", scope+"@"+slot))
	}
	if node != v.Node {
		return down(fmt.Sprintf("slot %s is on node %s, not on node %s", slot, node, v.Node))
	}
	for _, cs := range v.Scopes {
		if cs.Scope != sc {
			continue
		}
		// Of two replicas at a slot (a rollout's old and new), the one
		// that serves.
		var found *checkReplica
		for i, r := range cs.Replicas {
			if r.Index == index && r.Canary == canary && (found == nil || r.Healthy && !found.Healthy) {
				found = &cs.Replicas[i]
			}
		}
		if found == nil {
			return down(fmt.Sprintf("no replica at slot %s of %s", slot, sc))
		}
		if !found.Healthy || found.State != "running" {
			return down(fmt.Sprintf("the replica at slot %s of %s is %s and not healthy", slot, sc, found.State))
		}
		return up(score(cs, found.Backend))
	}
	return down(fmt.Sprintf("scope %s is not served by node %s", sc, v.Node))
}

// findBackend matches a replica by its advertised address, else by port
// alone: HAProxy may reach the node by another of its addresses, and a
// host port belongs to one replica whatever the address.
func findBackend(v checkView, addr, port string) (checkScope, checkReplica, bool) {
	for _, cs := range v.Scopes {
		for _, r := range cs.Replicas {
			if r.Backend == addr {
				return cs, r, true
			}
		}
	}
	for _, cs := range v.Scopes {
		for _, r := range cs.Replicas {
			if _, p, err := net.SplitHostPort(r.Backend); err == nil && p == port {
				return cs, r, true
			}
		}
	}
	return checkScope{}, checkReplica{}, false
}

func answerScope(cs checkScope) string {
	healthy, sum := 0, 0
	for _, r := range cs.Replicas {
		if r.Healthy && r.State == "running" {
			healthy++
			sum += score(cs, r.Backend)
		}
	}
	if healthy > 0 {
		return up(sum / healthy)
	}
	switch {
	case cs.Phase == events.PhaseFailed && cs.Reason != "":
		return down(cs.Reason)
	case cs.Phase == events.PhaseRemoved:
		return down(fmt.Sprintf("%s is removed", cs.Scope))
	case len(cs.Replicas) == 0:
		return down(fmt.Sprintf("%s has no replica on this node", cs.Scope))
	}
	return down(fmt.Sprintf("%s has no healthy replica", cs.Scope))
}

// answerNode is "ready up 100%" unless every scope of the node is failing:
// it has no healthy replica, and it failed or has replicas that are not.
func answerNode(v checkView) string {
	var failing []string
	for _, cs := range v.Scopes {
		healthy := 0
		for _, r := range cs.Replicas {
			if r.Healthy && r.State == "running" {
				healthy++
			}
		}
		if healthy > 0 || (cs.Phase != events.PhaseFailed && len(cs.Replicas) == 0) {
			return up(100)
		}
		why := cs.Reason
		if why == "" {
			why = "no healthy replica"
		}
		failing = append(failing, cs.Scope.String()+": "+why)
	}
	if len(failing) == 0 {
		return up(100)
	}
	return down("all scopes failing: " + strings.Join(failing, "; "))
}

// score is a backend's score as a weight percentage, 100 when unscored.
func score(cs checkScope, backend string) int {
	if s, ok := cs.Scores[backend]; ok {
		return max(0, min(100, s))
	}
	return 100
}

func up(weight int) string { return fmt.Sprintf("ready up %d%%\n", weight) }

// down keeps the reason on one short line: HAProxy reads one line and
// shows the text after '#' as the check's description.
func down(reason string) string {
	reason = strings.Join(strings.Fields(reason), " ")
	if len(reason) > 200 {
		reason = reason[:197] + "..."
	}
	return "down #" + reason + "\n"
}

// checkServer answers HAProxy agent checks: one line per connection, then
// close.
type checkServer struct {
	ln   net.Listener
	view func() checkView
	log  *slog.Logger
	wg   sync.WaitGroup
}

// listenCheck binds the agent-check listener.
func listenCheck(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("agent check: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// serve accepts until ctx ends, then closes the listener and waits for the
// connections in flight.
func (s *checkServer) serve(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			s.log.Warn("agent check: accept", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		s.wg.Go(func() { s.handle(conn) })
	}
	s.ln.Close()
	s.wg.Wait()
}

func (s *checkServer) handle(conn net.Conn) {
	defer conn.Close()
	payload := readPayload(conn)
	line := answer(s.view(), payload)
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte(line)); err != nil {
		s.log.Debug("agent check: write", "remote", conn.RemoteAddr(), "err", err)
	}
}

// readPayload reads what the peer sends up to a newline, for at most
// payloadWait: no payload is the common case and must not delay the answer.
func readPayload(conn net.Conn) string {
	_ = conn.SetReadDeadline(time.Now().Add(payloadWait))
	buf := make([]byte, 0, 128)
	tmp := make([]byte, 128)
	for len(buf) < 512 {
		n, err := conn.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if i := strings.IndexByte(string(buf), '\n'); i >= 0 {
			return string(buf[:i])
		}
		if err != nil {
			break
		}
	}
	return string(buf)
}
