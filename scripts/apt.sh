# Sourced by the install scripts: have, and apt_ready, which sets SUDO for
# apt-get (or exits saying what to do) and makes apt-get non-interactive.
have() { command -v "$1" >/dev/null 2>&1; }

# apt_ready NAME WHAT: NAME is the script's, for its messages; WHAT is what
# to install by other means where there is no apt-get.
apt_ready() {
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then
		if have sudo; then SUDO="sudo"; else echo "$1: run as root (or install sudo)" >&2; exit 1; fi
	fi
	if ! have apt-get; then
		echo "$1: no apt-get; install $2 with your package manager" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
}
