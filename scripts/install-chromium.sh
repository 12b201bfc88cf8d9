#!/usr/bin/env bash
# Installs Debian's chromium for the dashboard's browser tests (api package,
# driven headless with chromedp). Debian/Ubuntu only (apt-get). Idempotent:
# it does nothing when a chromium is already on the PATH. Run as root (or
# with sudo available).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
if have chromium || have chromium-browser; then
	echo "install-chromium: $( (chromium --version || chromium-browser --version) 2>/dev/null | head -1)"
	exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if have sudo; then SUDO="sudo"; else echo "install-chromium: run as root (or install sudo)" >&2; exit 1; fi
fi
if ! have apt-get; then
	echo "install-chromium: no apt-get; install chromium with your package manager" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
echo "install-chromium: $(chromium --version 2>/dev/null | head -1)"
