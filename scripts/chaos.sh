#!/bin/sh
# The long chaos suite (task chaos): the chaos package with HOIST_CHAOS_LONG=1,
# then the balancer restarts under load of cmd/hoist, with the machine and
# every FIGURE line collected in $CHAOS_LOG (default /tmp/hoist-chaos.log) for docs/reliability.md.
set -eu
log=${CHAOS_LOG:-${TMPDIR:-/tmp}/hoist-chaos.log}
{
  echo "== $(date -u +%FT%TZ) $(git describe --always --dirty 2>/dev/null || echo unknown)"
  echo "nproc: $(nproc)"
  grep -m1 'model name' /proc/cpuinfo || true
  echo "HOIST_CHAOS_LONG=${HOIST_CHAOS_LONG:-} HOIST_BALANCER_RESTARTS=${HOIST_BALANCER_RESTARTS:-} HOIST_CHAOS_SEED=${HOIST_CHAOS_SEED:-}"
} > "$log"
status=0
go test -count=1 -timeout 60m -v ./chaos "$@" >> "$log" 2>&1 || status=1
go test -count=1 -timeout 30m -v -run '^TestBalancerRestartUnderLoad$' ./cmd/hoist >> "$log" 2>&1 || status=1
grep -E 'FIGURE|^(--- |=== RUN|ok|FAIL|PASS)|seed [0-9]+:|restarts: [0-9]+ requests' "$log" | grep -v '^=== RUN' || true
echo "full log: $log"
exit $status
