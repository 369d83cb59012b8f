#!/usr/bin/env bash
# Build (or find cached) the guest kernel of the real-kernel test tier.
#
#   tools/realkernel/build-kernel.sh [OUTDIR]
#
# Installs what it needs on a Debian 12 machine (as root), unpacks Debian's linux-source-6.12,
# runs allnoconfig + realkernel.config, builds bzImage, and keeps in OUTDIR:
#   bzImage  config  modules.builtin  modules.builtin.modinfo  System.map  release  stamp
# Default OUTDIR: ${XDG_CACHE_HOME:-$HOME/.cache}/xeclient/realkernel/<srcver>-<fraghash>/
# It is rebuilt only when the source-package version or the fragment changes.
# The last line on stdout is OUTDIR; progress goes to stderr.
#
# Environment: RK_JOBS (make -j, default 2), RK_FRAGMENT (config fragment), RK_CACHE_ROOT.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case ${1:-} in -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
[[ -r $RK_FRAGMENT ]] || rk_die "no config fragment at $RK_FRAGMENT"

rk_ensure_packages qemu-system-x86 kmod "$RK_SRC_PKG" \
    build-essential bison flex bc cpio libelf-dev libssl-dev xz-utils
srcver=$(rk_srcver)
[[ -n $srcver ]] || rk_die "$RK_SRC_PKG is not installed"
fraghash=$(rk_fraghash)
out=${1:-$(rk_default_kdir "$srcver")}
mkdir -p "$RK_CACHE_ROOT" "$out"
out=$(cd "$out" && pwd)
stamp_want=$(printf 'srcpkg=%s\nsrcver=%s\nfraghash=%s\n' "$RK_SRC_PKG" "$srcver" "$fraghash")

up_to_date() {
    [[ -s $out/bzImage && -s $out/modules.builtin && -f $out/stamp ]] &&
        [[ $(head -n 3 "$out/stamp") == "$stamp_want" ]]
}

if up_to_date; then
    rk_log "up to date: $out"
    printf '%s\n' "$out"
    exit 0
fi

# One build at a time per cache (a second caller waits, then finds the result).
exec 9>"$RK_CACHE_ROOT/.build.lock"
if ! flock -n 9; then
    rk_log "another build is running; waiting for it"
    flock 9
fi
if up_to_date; then
    rk_log "up to date: $out"
    printf '%s\n' "$out"
    exit 0
fi

t0=$SECONDS
tarball=/usr/src/$RK_SRC_PKG.tar.xz
[[ -r $tarball ]] || rk_die "no $tarball (package $RK_SRC_PKG)"
src_root=$RK_CACHE_ROOT/src-${srcver//:/_}
srctree=$src_root/$RK_SRC_PKG
if [[ ! -f $src_root/.extracted ]]; then
    rk_log "unpacking $tarball"
    rm -rf "$src_root"
    mkdir -p "$src_root"
    tar -C "$src_root" -xf "$tarball"
    [[ -f $srctree/Makefile ]] || rk_die "unexpected layout of $tarball (no $srctree/Makefile)"
    touch "$src_root/.extracted"
fi
# The object tree is kept per source version, so a fragment change rebuilds incrementally.
obj=$RK_CACHE_ROOT/obj-${srcver//:/_}
mkdir -p "$obj"
frag_abs=$(cd "$(dirname "$RK_FRAGMENT")" && pwd)/$(basename "$RK_FRAGMENT")
kmake() { make -s -C "$srctree" O="$obj" "$@"; }

rk_log "configuring: allnoconfig + $frag_abs"
kmake KCONFIG_ALLCONFIG="$frag_abs" allnoconfig >&2
# Every line of the fragment must have survived (a typo or a missing dependency would be silent).
bad=0
while IFS= read -r line; do
    [[ $line =~ ^CONFIG_[A-Za-z0-9_]+= ]] || continue
    grep -qxF -- "$line" "$obj/.config" || { rk_log "not in the final .config: $line"; bad=1; }
done <"$RK_FRAGMENT"
((bad == 0)) || rk_die "config fragment not applied (see above)"

jobs=${RK_JOBS:-2}
rk_log "building $RK_SRC_PKG $srcver with nice -n 10 make -j$jobs (several minutes)"
nice -n 10 make -s -C "$srctree" O="$obj" -j"$jobs" bzImage modules >&2
release=$(kmake kernelrelease)

rm -f "$out/stamp"
cp "$obj/arch/x86/boot/bzImage" "$out/bzImage"
cp "$obj/.config" "$out/config"
cp "$obj/modules.builtin" "$obj/modules.builtin.modinfo" "$obj/System.map" "$out/"
printf '%s\n' "$release" >"$out/release"
{
    printf '%s\n' "$stamp_want"
    printf 'release=%s\nrecipe=%s\nbuilt=%s\nbuild_seconds=%s\n' \
        "$release" "$RK_RECIPE" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$((SECONDS - t0))"
} >"$out/stamp"
rk_log "built $release in $((SECONDS - t0)) s: $out/bzImage"
printf '%s\n' "$out"
