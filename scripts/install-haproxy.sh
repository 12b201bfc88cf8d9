#!/usr/bin/env bash
# Installs Debian's haproxy for the tests of `hoist haproxy` (e2e package:
# a real HAProxy follows rollouts through its Runtime API). Debian/Ubuntu
# only (apt-get). Idempotent: it does nothing when haproxy is already on the
# PATH. Run as root (or with sudo available). The package's own service is
# kept from starting (and stopped where systemd runs it): the tests start
# their own haproxy, on ports they choose.
set -euo pipefail

. "$(dirname "$0")/apt.sh"
if have haproxy; then
	echo "install-haproxy: $(haproxy -v 2>&1 | head -1)"
	exit 0
fi
apt_ready install-haproxy "haproxy (2.6 or newer)"
# policy-rc.d 101 keeps the maintainer script from starting the service
# inside containers without systemd.
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod +x /usr/sbin/policy-rc.d
	created_policy=1
fi
trap '[ -n "$created_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends haproxy
if have systemctl && [ -d /run/systemd/system ]; then
	$SUDO systemctl disable --now haproxy >/dev/null 2>&1 || true
fi
echo "install-haproxy: $(haproxy -v 2>&1 | head -1)"
