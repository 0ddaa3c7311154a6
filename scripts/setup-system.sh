#!/usr/bin/env bash
# Install the system tools the QEMU tier needs and fetch the TF-A source it builds; also the
# headless Chromium the report test opens report.html in.
# Idempotent and non-interactive: each step is skipped when its result is already there.
# Usage (as root): scripts/setup-system.sh        HIL_CACHE=<dir> overrides the source cache dir.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

TFA_VERSION="2.12.1+dfsg-1"
CACHE="${HIL_CACHE:-$HOME/.cache/hil/src}"
TFA_DIR="$CACHE/tf-a-2.12.1"
SRC_LIST=/etc/apt/sources.list.d/hil-deb-src.sources
PACKAGES=(qemu-system-arm gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu device-tree-compiler
          make bc bison flex libssl-dev dpkg-dev ser2net chromium chromium-driver)

step() { printf 'setup: %s\n' "$*"; }
LOG="$(mktemp /tmp/hil-setup.XXXXXX.log)"
fail() { printf 'setup: FAILED: %s (log: %s)\n' "$*" "$LOG" >&2; exit 1; }
quiet() { "$@" >>"$LOG" 2>&1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (apt-get install)"

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# deb-src for trixie lives in its own file so the system's own sources stay untouched.
need_update=0
if [ ! -f "$SRC_LIST" ]; then
    step "adding deb-src (trixie) in $SRC_LIST"
    # The same mirror the system already uses for Debian (its first main-archive URI).
    mirror=$({ grep -hoE '^(URIs:|deb) +[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources \
               /etc/apt/sources.list 2>/dev/null || true; } | awk '{print $2}' | head -n 1)
    [ -n "$mirror" ] || fail "no Debian mirror found in the system's apt sources"
    cat > "$SRC_LIST" <<SRC
Types: deb-src
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    need_update=1
else
    step "deb-src entry present"
fi

if [ ! -f "$TFA_DIR/Makefile" ] || [ "${#missing[@]}" -gt 0 ] || [ "$need_update" -eq 1 ]; then
    if [ "${#missing[@]}" -gt 0 ] || [ "$need_update" -eq 1 ] \
        || ! apt-cache showsrc "arm-trusted-firmware" 2>/dev/null | grep -q "^Version: $TFA_VERSION"; then
        step "apt-get update"
        quiet apt-get update -qq || fail "apt-get update"
    fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]}"
    quiet apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || fail "apt-get install ${missing[*]}"
else
    step "packages already installed"
fi

if [ -f "$TFA_DIR/Makefile" ]; then
    step "TF-A source present in $TFA_DIR"
else
    step "fetching arm-trusted-firmware=$TFA_VERSION into $TFA_DIR"
    mkdir -p "$CACHE"
    dl="$(mktemp -d "$CACHE/.dl.XXXXXX")"
    trap 'rm -rf "$dl"' EXIT
    # The _apt sandbox user cannot write into a root-owned temp dir; download as root.
    (cd "$dl" && quiet apt-get source -qq --download-only -o APT::Sandbox::User=root \
        "arm-trusted-firmware=$TFA_VERSION") \
        || fail "apt-get source arm-trusted-firmware=$TFA_VERSION"
    (cd "$dl" && quiet dpkg-source -x -- *.dsc tree) || fail "dpkg-source -x"
    mv "$dl/tree" "$TFA_DIR"
    step "TF-A source extracted"
fi

for tool in qemu-system-aarch64 aarch64-linux-gnu-gcc dtc make chromium chromedriver; do
    command -v "$tool" >/dev/null || fail "$tool not found after install"
done
rm -f "$LOG"
step "done"
