# SPDX-License-Identifier: GPL-2.0
# Helpers for the Debian 13 target (sourced after common.sh, not run).
# See scripts/debian-kernel for what the Debian root and its env file hold.

DEBIAN_MIRROR=${COWSTAT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SUITE=trixie
DEBIAN_BACKPORTS=trixie-backports
DEBIAN_FLAVOUR=cloud-amd64
# Debian's own make variables for its kernel (gcc-14, no plain `gcc` needed).
DEBIAN_KMAKE="CROSS_COMPILE=x86_64-linux-gnu- CC=x86_64-linux-gnu-gcc-14"
# The env file of the Debian kernel this checkout uses (a symlink into the cache).
DEBIAN_ENV=$BUILD_DIR/debian/kernel.env

# in_root ROOT COMMAND...: run COMMAND as root inside the Debian root, with a
# clean environment. /proc and /dev are mounted in a private mount namespace,
# so they are gone when COMMAND ends, whether it succeeds, fails or is killed,
# and two concurrent callers never unmount each other's /proc.
in_root() {
	local root=$1
	shift
	[[ -x $root/usr/bin/env ]] || die "$root is not a Debian root (run scripts/debian-kernel)"
	unshare --mount --propagation private -- /bin/sh -ec '
		root=$1
		shift
		mount -t proc proc "$root/proc"
		mount --bind /dev "$root/dev"
		exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			DEBIAN_FRONTEND=noninteractive "$@"
	' in_root "$root" "$@"
}

# registry_check STEP: die naming STEP when the Debian registry cannot be
# reached; return quietly when it can (the failure was something else).
registry_check() {
	local host=${DEBIAN_MIRROR#*://} port=80
	host=${host%%/*}
	[[ $DEBIAN_MIRROR == https:* ]] && port=443
	[[ $host == *:* ]] && { port=${host##*:}; host=${host%:*}; }
	timeout 10 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null ||
		die "step '$1' needs the Debian registry ($host), which is unreachable from this machine"
}

# load_debian_env: read $DEBIAN_ENV (ROOT KDIR KREL VMLINUZ ...) or die.
load_debian_env() {
	[[ -f $DEBIAN_ENV ]] ||
		die "no Debian kernel set up for this checkout ($DEBIAN_ENV missing); run scripts/debian-kernel (or make module TARGET=debian)"
	# shellcheck source=/dev/null
	source "$DEBIAN_ENV"
}
