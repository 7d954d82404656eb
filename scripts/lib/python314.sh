# Shared by scripts/setup, scripts/python and scripts/develop (sourced, not run).
#
# Home Assistant 2026.10+ needs Python >= 3.14.2. Where the machine has it
# (`python3.14` on PATH, pyenv or /usr/local), the project uses it directly. Where it
# doesn't, the project brings its own: a minimal Debian `sid` root file system (which
# ships Python 3.14) built once with debootstrap into a cache outside the clone and
# reused by every clone. Commands then run inside it through `chroot`, in a private
# mount namespace (`unshare --mount`): the clone, /dev, /proc, /sys and /tmp are bound
# at their own paths for that one command only, so nothing stays mounted afterwards
# and deleting the cache or a clone never meets a live mount.

MIN_PYTHON_VERSION="3.14.2"
CACHE_DIR="${FREQUENZ_HA_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/frequenz-microgrid-ha}"
ROOTFS="$CACHE_DIR/debian-sid-python3.14"
ROOTFS_PACKAGES="python3,python3-venv,python3-dev,gcc,g++,git,ca-certificates"
# The environment file scripts/setup writes: how to run .venv's Python.
RUNNER_FILE=".venv/.runner"

# Print the path of a host Python >= MIN_PYTHON_VERSION, or nothing.
find_host_python() {
    local candidate
    for candidate in "${FREQUENZ_HA_PYTHON:-}" "$(command -v python3.14 2>/dev/null || true)" \
        "${PYENV_ROOT:-${HOME:-/root}/.pyenv}"/versions/3.14*/bin/python3.14 \
        /usr/local/bin/python3.14 /usr/bin/python3.14; do
        [ -n "$candidate" ] && [ -x "$candidate" ] || continue
        if "$candidate" -c "import sys, venv; sys.exit(sys.version_info < (${MIN_PYTHON_VERSION//./, }))" \
            2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
}

# The Debian archive the machine's apt already uses (so the same mirror or proxy).
debian_mirror() {
    local uri
    uri="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
        | grep -v security | head -n1)"
    if [ -z "$uri" ]; then
        uri="$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' \
            | grep -v security | head -n1)"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

# Build the root file system once (a few minutes, ~450 MB); reused afterwards.
ensure_rootfs() {
    if [ -f "$ROOTFS/.complete" ]; then
        return
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "scripts/setup: this machine has no Python >= $MIN_PYTHON_VERSION; the" \
            "project can provide one (a Debian sid root file system in $CACHE_DIR)," \
            "but that needs root. Run it as root, or install python3.14 and retry." >&2
        exit 1
    fi
    mkdir -p "$CACHE_DIR"
    (
        flock 9
        [ -f "$ROOTFS/.complete" ] && exit 0
        if ! command -v debootstrap >/dev/null 2>&1; then
            echo "scripts/setup: installing debootstrap" >&2
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
        fi
        local building="$ROOTFS.building"
        rm -rf "$building"
        echo "scripts/setup: building a Debian sid root file system with Python 3.14" \
            "in $ROOTFS (once; a few minutes)" >&2
        debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" \
            sid "$building" "$(debian_mirror)" >"$CACHE_DIR/debootstrap.log" 2>&1 || {
            tail -n 20 "$CACHE_DIR/debootstrap.log" >&2
            echo "scripts/setup: debootstrap failed (log: $CACHE_DIR/debootstrap.log)" >&2
            exit 1
        }
        rm -rf "$ROOTFS"
        mv "$building" "$ROOTFS"
        touch "$ROOTFS/.complete"
    ) 9>"$CACHE_DIR/.lock"
}

# Refresh what the root fs takes from the host each time: name resolution and the CA
# bundle that works for the package registries (cheap; the host may change them).
sync_rootfs_host_files() {
    cp -f /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null || true
    cp -f /etc/hosts "$ROOTFS/etc/hosts" 2>/dev/null || true
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        mkdir -p "$ROOTFS/etc/ssl/certs"
        cp -f /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
    fi
}

# Run a command inside the root fs, in the current directory, with the clone ($1) bound
# at its own path. Mounts live only as long as the command. Replaces the calling
# shell (call it in a subshell to go on afterwards): signals reach the command.
in_rootfs() {
    local repo="$1"
    shift
    mkdir -p "$ROOTFS$repo"
    # shellcheck disable=SC2016
    exec unshare --mount --propagation private -- /bin/bash -c '
        set -e
        root="$1" repo="$2" dir="$3"
        shift 3
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mount --rbind /sys "$root/sys"
        mount --bind /tmp "$root/tmp"
        mount --bind "$repo" "$root$repo"
        exec chroot "$root" /usr/bin/env --chdir="$dir" HOME="${HOME:-/root}" "$@"
    ' in_rootfs "$ROOTFS" "$repo" "$PWD" "$@"
}
