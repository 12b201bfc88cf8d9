#!/usr/bin/env bash
# Installs Debian's chromium for the dashboard's browser tests (api package,
# driven headless with chromedp). Debian/Ubuntu only (apt-get). Idempotent:
# it does nothing when a chromium is already on the PATH. Run as root (or
# with sudo available).
set -euo pipefail

. "$(dirname "$0")/apt.sh"
if have chromium || have chromium-browser; then
	echo "install-chromium: $( (chromium --version || chromium-browser --version) 2>/dev/null | head -1)"
	exit 0
fi
apt_ready install-chromium "chromium"
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
echo "install-chromium: $(chromium --version 2>/dev/null | head -1)"
