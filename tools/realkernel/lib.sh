# shellcheck shell=bash
# Shared helpers for build-kernel.sh, run-in-vm.sh and ci.sh (sourced, not executed).

RK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RK_SRC_PKG=${RK_SRC_PKG:-linux-source-6.12}
RK_FRAGMENT=${RK_FRAGMENT:-$RK_DIR/realkernel.config}
# Bump when build-kernel.sh changes what it produces; it is part of the cache key.
RK_RECIPE=1
RK_CACHE_ROOT=${RK_CACHE_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/xeclient/realkernel}

rk_log() { printf '[realkernel] %s\n' "$*" >&2; }
rk_die() { rk_log "error: $*"; exit 2; }

# Installed version of the kernel source package, empty when it is not installed.
rk_srcver() {
    dpkg-query -W -f='${Status} ${Version}\n' "$RK_SRC_PKG" 2>/dev/null |
        awk '$1 == "install" && $3 == "installed" { print $4 }'
}

rk_fraghash() {
    { cat "$RK_FRAGMENT"; printf 'recipe=%s\n' "$RK_RECIPE"; } | sha256sum | cut -c1-12
}

# Default kernel directory for a given source version.
rk_default_kdir() {
    local srcver=$1
    printf '%s/%s-%s\n' "$RK_CACHE_ROOT" "${srcver//:/_}" "$(rk_fraghash)"
}

# Packages (from a list) that dpkg does not report as installed.
rk_missing_packages() {
    local pkg status
    for pkg in "$@"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || printf '%s\n' "$pkg"
    done
}

# Install missing Debian packages (apt-get update at most once per process).
rk_ensure_packages() {
    local missing
    mapfile -t missing < <(rk_missing_packages "$@")
    ((${#missing[@]} == 0)) && return 0
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || rk_die "missing packages (${missing[*]}) and not root; install them first"
        sudo=(sudo)
    fi
    rk_log "installing: ${missing[*]}"
    if [[ -z ${RK_APT_UPDATED:-} ]]; then
        "${sudo[@]}" apt-get update -qq >&2
        RK_APT_UPDATED=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
