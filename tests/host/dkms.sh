#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# DKMS, tested (dkms.conf; README "cowstat on your own Debian 13 machine"):
# in a throwaway overlay of the cached Debian 13 root (scripts/debian-kernel;
# the cache itself is not changed), `dkms add`, `dkms build` and `dkms
# install` cowstat for Debian's stock kernel, as the README tells a user to;
# the three ways a build cannot work (no Rust metadata, a kernel without
# CONFIG_RUST, another rustc) each skip the build (dkms status 77) with one
# clear line, and the kernel's postinst hook then still succeeds; the
# kernel's postinst hook (what apt runs when a kernel is installed) builds
# and installs it again; the .ko DKMS installed loads into Debian's
# unmodified kernel (scripts/vm-run --target debian --module) with every
# hook active. KTAP. Needs root. About 60 s warm (two module builds and one
# VM boot).
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/ktap.sh
source scripts/lib/common.sh
source scripts/lib/debian.sh

ktap_header
ktap_plan 11

ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' dkms.conf)
scripts/debian-kernel >/dev/null 2>&1 || { echo "# scripts/debian-kernel failed" >&2; }
load_debian_env
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cowstat-dkms.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{upper,work,merged} "$tmp/upper/tmp" "$tmp/upper/usr/src/cowstat-$ver"
# What the README copies to /usr/src/cowstat-VERSION.
cp -r dkms.conf Kbuild rust "$tmp/upper/usr/src/cowstat-$ver/"

# Runs inside the root: $1 KREL, $2 the regenerated tree (KDIR), $3 version.
cat >"$tmp/upper/tmp/dkms-test.sh" <<'EOF'
set -u
krel=$1 kdir=$2 ver=$3 out=/tmp/out
mkdir -p $out
step() { # step NAME COMMAND...: output in $out/NAME.log, a STEP line
	local name=$1 t0
	shift
	t0=$(date +%s%N)
	"$@" >"$out/$name.log" 2>&1
	echo "STEP $name $? $((($(date +%s%N) - t0) / 1000000))"
}
step add dkms add cowstat/$ver
# Debian's headers as installed: no rust/*.rmeta.
step no_metadata dkms build cowstat/$ver -k $krel
# What apt runs when it installs such a kernel: must not fail the install.
step hook_no_metadata /etc/kernel/postinst.d/dkms $krel
# A kernel without CONFIG_RUST: its config, nothing else.
mkdir -p /tmp/norust
grep -v '^CONFIG_RUST=' /usr/src/linux-headers-$krel/.config >/tmp/norust/.config
step no_config_rust dkms build cowstat/$ver -k $krel --kernelsourcedir /tmp/norust
# The README's regenerated tree, with the headers' .kernelvariables (gcc-14).
ln -s $kdir /usr/src/linux-rust-$krel
cp /usr/src/linux-headers-$krel/.kernelvariables $kdir/
# A different rustc first in PATH (rustup's, or backports').
printf '#!/bin/sh\necho "rustc 1.93.0 (254b59607 2026-01-19)"\n' >/usr/local/bin/rustc
chmod +x /usr/local/bin/rustc
step other_rustc dkms build cowstat/$ver -k $krel
rm /usr/local/bin/rustc
step build dkms build cowstat/$ver -k $krel
step install dkms install cowstat/$ver -k $krel
dkms status >$out/status.txt 2>&1
ko=$(find /lib/modules/$krel/updates/dkms -name 'cowstat.ko*' | head -1)
echo "$ko" >$out/ko-path
modinfo -F vermagic "$ko" >$out/vermagic 2>&1
cp "$ko" $out/
# A kernel upgrade: apt runs the kernel's postinst hook, which builds and
# installs every AUTOINSTALL module not yet built for that kernel.
step unbuild dkms unbuild cowstat/$ver -k $krel
step hook /etc/kernel/postinst.d/dkms $krel
dkms status >$out/status-after-hook.txt 2>&1
EOF

start=$SECONDS
unshare --mount --propagation private -- bash -c '
	set -e
	t=$1 root=$2
	mount -t overlay overlay -o "lowerdir=$root,upperdir=$t/upper,workdir=$t/work" "$t/merged"
	mount -t proc proc "$t/merged/proc"
	mount --bind /dev "$t/merged/dev"
	shift 2
	chroot "$t/merged" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		bash /tmp/dkms-test.sh "$@"
' dkms "$tmp" "$ROOT" "$KREL" "$KDIR" "$ver" >"$tmp/steps" 2>&1
ktap_info "DKMS steps in the overlay root: $((SECONDS - start)) s"
o=$tmp/upper/tmp/out

# st NAME: a step's exit status; ms NAME: its time; log NAME: its output.
st() { awk -v n="$1" '$1 == "STEP" && $2 == n { print $3 }' "$tmp/steps"; }
ms() { awk -v n="$1" '$1 == "STEP" && $2 == n { print $4 }' "$tmp/steps"; }
log() { cat "$o/$1.log" 2>/dev/null; }

ktap_expect_eq "dkms_add" 0 "$(st add)"

line=$(log no_metadata | grep -m1 '^cowstat: skipped: ')
[[ $(st no_metadata) == 77 && $line == *"no Rust metadata (rust/libkernel.rmeta)"*"dkms install cowstat/$ver -k $KREL"* ]]
ktap_result $? "no_rust_metadata_skips_with_one_clear_line" "status $(st no_metadata) (77: skipped): $line"
line=$(log hook_no_metadata | grep -m1 '^cowstat: skipped: ')
[[ $(st hook_no_metadata) == 0 && -n $line ]]
ktap_result $? "kernel_postinst_hook_without_metadata_does_not_fail" \
	"status $(st hook_no_metadata) (non-zero would fail the kernel package's postinst)" "$line"

line=$(log no_config_rust | grep -m1 'BUILD_EXCLUSIVE')
[[ $(st no_config_rust) == 77 && -n $line ]]
ktap_result $? "kernel_without_config_rust_is_skipped" "status $(st no_config_rust) (77: skipped): $line"

line=$(log other_rustc | grep -m1 '^cowstat: skipped: ')
[[ $(st other_rustc) == 77 && $line == *"rustc mismatch"*"built with \"$RUSTC_VERSION_TEXT\""*"has \"rustc 1.93.0"* ]]
ktap_result $? "other_rustc_skips_with_one_clear_line" "status $(st other_rustc) (77: skipped): $line"

ktap_result "$(st build)" "dkms_build" "status $(st build), $(ms build) ms" \
	"$(log build | grep -E 'Error|error' | head -3)"

vermagic=$(cat "$o/vermagic" 2>/dev/null)
[[ $(st install) == 0 && $(cat "$o/ko-path") == "/lib/modules/$KREL/updates/dkms/cowstat.ko"* &&
	${vermagic%% *} == "$KREL" ]] && grep -q "^cowstat/$ver, $KREL, x86_64: installed" "$o/status.txt"
ktap_result $? "dkms_install" "status $(st install); $(cat "$o/ko-path"); vermagic $vermagic" \
	"dkms status: $(cat "$o/status.txt")"

ktap_expect_eq "dkms_unbuild" 0 "$(st unbuild)"
[[ $(st hook) == 0 ]] && grep -q "^cowstat/$ver, $KREL, x86_64: installed" "$o/status-after-hook.txt"
ktap_result $? "kernel_postinst_hook_rebuilds_and_installs" "status $(st hook), $(ms hook) ms" \
	"dkms status: $(cat "$o/status-after-hook.txt")"

# The module DKMS installed, in Debian's own kernel.
ko=$(find "$o" -maxdepth 1 -name 'cowstat.ko*' | head -1)
[[ $ko == *.xz ]] && { xz -dc "$ko" >"$tmp/cowstat.ko"; ko=$tmp/cowstat.ko; }
start=$SECONDS
vm=$(scripts/vm-run --target debian --module "${ko:-/nonexistent.ko}" --timeout 120 -- \
	sh -c 'dmesg | grep -m1 "cowstat: Loaded"; cat /proc/cowstat/probes
		# Hooks not active although the kernel has the function: none expected.
		for f in $(awk "/^function/ { on = 1; next } on && /^\$/ { exit } on && \$3 != \"active\" { print \$1 }" /proc/cowstat/probes); do
			grep -q " $f\$" /proc/kallsyms && echo "present-but-inactive: $f"
		done; true' 2>&1)
vst=$?
ktap_info "VM boot: $((SECONDS - start)) s"
dmesg_line=$(grep -m1 'cowstat: Loaded' <<<"$vm")
ktap_result $([[ $vst == 0 && -n $dmesg_line ]] && echo 0 || echo 1) \
	"dkms_module_loads_in_debian_kernel" "vm-run status $vst; dmesg: ${dmesg_line:-none}"
# Optional hooks whose function the compiler inlined on this build (e.g.
# __split_huge_pmd_locked) are "missing"; every hook whose function the
# kernel has must be active.
inactive=$(awk '/^function/ { on = 1; next } on && /^$/ { exit } on && $3 != "active" { print $1 }' <<<"$vm")
hooks=$(awk '/^function/ { on = 1; next } on && /^$/ { exit } on { n++ } END { print n + 0 }' <<<"$vm")
broken=$(sed -n 's/^present-but-inactive: //p' <<<"$vm")
[[ $hooks -ge 9 && -z $broken ]]
ktap_result $? "dkms_module_every_present_hook_active" \
	"$hooks hooks; not active: ${inactive:-none} (not functions on this kernel); active missing: ${broken:-none}"
ktap_finished
