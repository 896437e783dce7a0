#!/usr/bin/env bash
# Install the Debian packages vigila needs for development and tests,
# skipping whatever is already present.  Safe to run repeatedly.
#
# Starts no services: the test suite runs its own throw-away PostgreSQL
# clusters (tests/pgserver.py), so Debian's default "main" cluster is not
# created when this script installs PostgreSQL.
set -euo pipefail

# ---------------------------------------------------------------------------
# Requirements table: "<check> <debian-package>", one entry per line.
#
# <check> is a comma-separated list of alternatives; the requirement is met
# when any alternative is found.  "py:MODULE" is a module the Python found
# below must import (Debian splits venv/ensurepip into python3-venv).
# "file:PATH" is a regular file that must exist (shell globs allowed), for
# data such as typelibs, GStreamer plugins, fonts and the system Python's
# own modules (the simulated cameras run under /usr/bin/python3, whose `gi`
# the venv does not have).  Any other alternative containing "/" is a path
# (shell globs allowed) that must be an executable file; anything else is a
# command name looked up on PATH.
#
# Optional per-package hooks: define pre_install_<pkg> / post_install_<pkg>
# (with "-", "." and "+" in the package name replaced by "_").
# ---------------------------------------------------------------------------
REQUIREMENTS=(
    "py:ensurepip                               python3-venv"
    "initdb,/usr/lib/postgresql/*/bin/initdb    postgresql"
    "ffmpeg                                     ffmpeg"
    "mosquitto,/usr/sbin/mosquitto              mosquitto"
    # Simulated cameras (vigila sim cameras): GStreamer's RTSP server through
    # the system Python's gi, replaying a clip drawn with a DejaVu font.
    "file:/usr/lib/python3/dist-packages/gi/__init__.py                          python3-gi"
    "file:/usr/lib/*/girepository-1.0/GstRtspServer-1.0.typelib                  gir1.2-gst-rtsp-server-1.0"
    "file:/usr/lib/*/gstreamer-1.0/libgstrtspclientsink.so                       gstreamer1.0-rtsp"
    "file:/usr/lib/*/gstreamer-1.0/libgstrtp.so                                  gstreamer1.0-plugins-good"
    "file:/usr/lib/*/gstreamer-1.0/libgstvideoparsersbad.so                      gstreamer1.0-plugins-bad"
    "file:/usr/lib/*/gstreamer-1.0/libgstx264.so                                 gstreamer1.0-plugins-ugly"
    "file:/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf                    fonts-dejavu-core"
    # Browser tests: recorded video played by Chromium's own HLS player.
    "chromium,/usr/bin/chromium                 chromium"
)

MIN_PYTHON="3.11"
PYTHON=""
DROPIN_DIR=/etc/postgresql-common/createcluster.d
DROPIN_FILE="$DROPIN_DIR/50-vigila-no-main-cluster.conf"
POLICY_RC=/usr/sbin/policy-rc.d

log() { printf '%s\n' "$*"; }
err() { printf 'install-system: %s\n' "$*" >&2; }

# --- Python ----------------------------------------------------------------

check_python() {
    local candidate version
    for candidate in python3.11 python3; do
        command -v "$candidate" >/dev/null 2>&1 || continue
        # Run it: a pyenv shim can exist without a usable interpreter behind it.
        if version=$("$candidate" -c '
import sys
if sys.version_info < (3, 11):
    sys.exit(1)
print("%d.%d.%d" % sys.version_info[:3])
' 2>/dev/null); then
            PYTHON=$(command -v "$candidate")
            printf '%-12s present (%s %s)\n' python "$PYTHON" "$version"
            return 0
        fi
    done
    err "Python >= $MIN_PYTHON is required (python3.11, or python3 >= $MIN_PYTHON);" \
        "install it first, this script does not install Python."
    exit 1
}

# --- checks ----------------------------------------------------------------

# is_present "<alt1,alt2,...>": true when any alternative is found.
is_present() {
    local alternatives alt match
    IFS=',' read -r -a alternatives <<<"$1"
    for alt in "${alternatives[@]}"; do
        if [[ "$alt" == py:* ]]; then
            "$PYTHON" -c "import ${alt#py:}" >/dev/null 2>&1 && return 0
        elif [[ "$alt" == file:* ]]; then
            for match in ${alt#file:}; do
                [[ -f "$match" ]] && return 0
            done
        elif [[ "$alt" == */* ]]; then
            # Unquoted on purpose: expand globs such as /usr/lib/postgresql/*/bin/initdb.
            for match in $alt; do
                [[ -f "$match" && -x "$match" ]] && return 0
            done
        elif command -v "$alt" >/dev/null 2>&1; then
            return 0
        fi
    done
    return 1
}

hook_name() { # hook_name pre|post <package>
    local pkg="${2//[-.+]/_}"
    printf '%s_install_%s' "$1" "$pkg"
}

run_hook() { # run_hook pre|post <package>
    local fn
    fn=$(hook_name "$1" "$2")
    if declare -F "$fn" >/dev/null; then
        "$fn"
    fi
}

# --- privileges ------------------------------------------------------------

AS_ROOT=()
setup_privileges() { # setup_privileges <missing packages...>
    if [[ $(id -u) -eq 0 ]]; then
        AS_ROOT=()
    elif command -v sudo >/dev/null 2>&1; then
        AS_ROOT=(sudo)
    else
        err "missing Debian packages: $*"
        err "not running as root and sudo is not available; install them as root with:"
        err "  apt-get update && apt-get install --no-install-recommends $*"
        exit 1
    fi
}

as_root() {
    # "env" so DEBIAN_FRONTEND survives sudo's environment reset.
    ${AS_ROOT[@]+"${AS_ROOT[@]}"} env DEBIAN_FRONTEND=noninteractive "$@"
}

# --- package hooks ---------------------------------------------------------

pre_install_postgresql() {
    # Tell postgresql-common not to create (and so not to run) the default
    # "main" cluster; tests use their own clusters in temp directories.
    as_root mkdir -p "$DROPIN_DIR"
    printf '%s\n' \
        '# Written by vigila scripts/install-system.sh: tests run their own' \
        '# throw-away clusters, the default "main" cluster is not needed.' \
        'create_main_cluster = false' | as_root tee "$DROPIN_FILE" >/dev/null
}

post_install_postgresql() {
    # The test harness runs initdb/pg_ctl as this user when started as root.
    if ! getent passwd postgres >/dev/null; then
        err "package postgresql installed but there is no 'postgres' OS user"
        exit 1
    fi
}

# --- main ------------------------------------------------------------------

POLICY_RC_CREATED=0
cleanup() {
    if [[ $POLICY_RC_CREATED -eq 1 ]]; then
        as_root rm -f "$POLICY_RC" || true
    fi
}

block_service_starts() {
    # Debian maintainer scripts start services through invoke-rc.d /
    # deb-systemd-invoke, which honour policy-rc.d; exit code 101 means
    # "action forbidden".  Keep an existing policy untouched.
    [[ -e "$POLICY_RC" ]] && return 0
    trap cleanup EXIT
    printf '#!/bin/sh\n# temporary, from vigila scripts/install-system.sh\nexit 101\n' |
        as_root tee "$POLICY_RC" >/dev/null
    as_root chmod 755 "$POLICY_RC"
    POLICY_RC_CREATED=1
}

main() {
    check_python

    local entry check pkg rest
    local -a missing=() missing_checks=() present=()
    for entry in "${REQUIREMENTS[@]}"; do
        read -r check pkg rest <<<"$entry"
        if [[ -z "${check:-}" || -z "${pkg:-}" || -n "${rest:-}" ]]; then
            err "bad REQUIREMENTS entry: '$entry'"
            exit 2
        fi
        if is_present "$check"; then
            present+=("$pkg")
        else
            missing+=("$pkg")
            missing_checks+=("$check")
        fi
    done

    for pkg in ${present[@]+"${present[@]}"}; do
        printf '%-12s present\n' "$pkg"
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0

    setup_privileges "${missing[@]}"
    block_service_starts

    local i
    for pkg in "${missing[@]}"; do
        run_hook pre "$pkg"
    done

    as_root apt-get update
    as_root apt-get install -y --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}"

    for i in "${!missing[@]}"; do
        pkg="${missing[$i]}"
        run_hook post "$pkg"
        if ! is_present "${missing_checks[$i]}"; then
            err "installed $pkg but '${missing_checks[$i]}' is still not found"
            exit 1
        fi
        printf '%-12s installed\n' "$pkg"
    done
}

main "$@"
