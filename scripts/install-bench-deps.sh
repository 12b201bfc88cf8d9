#!/usr/bin/env bash
# Installs what `go run ./bench/balancer` compares hoist's balancer against:
# wrk (load), haproxy, nginx and caddy; and what `go run ./bench/eventpath`
# compares hoist's event path against: redis-server (pub/sub).
# Debian/Ubuntu only (apt-get).
# Idempotent: packages already installed are skipped. Run as root (or with
# sudo available). The proxies' own system services are stopped and
# disabled afterwards when systemd runs them, so only the benchmark starts
# them, on ports it chooses.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have wrk || need+=(wrk)
have haproxy || need+=(haproxy)
have caddy || need+=(caddy)
have redis-server || need+=(redis-server)
if ! have nginx && ! [ -x /usr/sbin/nginx ]; then
	need+=(nginx)
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if have sudo; then SUDO="sudo"; else echo "install-bench-deps: run as root (or install sudo)" >&2; exit 1; fi
fi

if [ ${#need[@]} -gt 0 ]; then
	if ! have apt-get; then
		echo "install-bench-deps: no apt-get; install ${need[*]} with your package manager" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	pkgs=()
	for p in "${need[@]}"; do
		if [ "$p" = nginx ] && ! apt-cache show nginx >/dev/null 2>&1; then
			p=nginx-light # older releases name the small build so
		fi
		pkgs+=("$p")
	done
	# policy-rc.d 101 keeps Debian's maintainer scripts from starting the
	# services (they would take ports 80/443) inside containers without systemd.
	created_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
		$SUDO chmod +x /usr/sbin/policy-rc.d
		created_policy=1
	fi
	trap '[ -n "$created_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
	$SUDO apt-get install -y -q --no-install-recommends "${pkgs[@]}"
else
	echo "install-bench-deps: wrk, haproxy, nginx, caddy and redis-server are already installed"
fi

# On a systemd host the packages start their services; the benchmark wants
# them stopped (it runs its own instances as child processes).
if have systemctl && [ -d /run/systemd/system ]; then
	for s in haproxy nginx caddy redis-server; do
		$SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
	done
fi

echo "--- versions"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
echo "wrk:     $(wrk -v 2>&1 | head -1 || true)"
echo "haproxy: $(haproxy -v 2>&1 | head -1)"
echo "nginx:   $("$nginx_bin" -v 2>&1 | head -1)"
echo "caddy:   $(caddy version 2>&1 | head -1)"
echo "redis:   $(redis-server --version 2>&1 | head -1)"
