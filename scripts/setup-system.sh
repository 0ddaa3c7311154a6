#!/usr/bin/env bash
# Install the system tools the QEMU tier needs and fetch the TF-A source it builds; also the
# headless Chromium the report test opens report.html in, and for the Linux guest the kernel
# source (linux-source-6.12) and an arm64 static busybox.
# Idempotent and non-interactive: each step is skipped when its result is already there.
# Usage (as root): scripts/setup-system.sh        HIL_CACHE=<dir> overrides the source cache dir.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

TFA_VERSION="2.12.1+dfsg-1"
CACHE="${HIL_CACHE:-$HOME/.cache/hil/src}"
TFA_DIR="$CACHE/tf-a-2.12.1"
SRC_LIST=/etc/apt/sources.list.d/hil-deb-src.sources
LINUX_VERSION="6.12.117-1~deb12u1"
LINUX_DIR="$CACHE/linux-source-6.12"
BUSYBOX_DIR="$CACHE/busybox-static-arm64"
# The Linux guest's sources only for its opt-in tier (make test-linux): unpacking the kernel costs
# make test time every fresh CI machine would pay for nothing.
WANT_LINUX="${HIL_LINUX_TIER:-0}"
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

if [ ! -f "$TFA_DIR/Makefile" ] || { [ "$WANT_LINUX" = 1 ] && [ ! -f "$LINUX_DIR/Makefile" ]; } \
    || [ "${#missing[@]}" -gt 0 ] \
    || [ "$need_update" -eq 1 ]; then
    if [ "${#missing[@]}" -gt 0 ] || [ "$need_update" -eq 1 ] \
        || ! apt-cache showsrc "arm-trusted-firmware" 2>/dev/null | grep -q "^Version: $TFA_VERSION" \
        || { [ "$WANT_LINUX" = 1 ] \
            && ! apt-cache show "linux-source-6.12=$LINUX_VERSION" >/dev/null 2>&1; }; then
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

# The Linux guest's kernel is built out of tree (O=) from this read-only tree; the Debian version
# it came from is kept beside it, as the build's source identity.
if [ "$WANT_LINUX" != 1 ]; then
    step "Linux guest sources skipped (HIL_LINUX_TIER=1 or make test-linux fetches them)"
elif [ -f "$LINUX_DIR/Makefile" ] && [ "$(cat "$LINUX_DIR/.hil-version" 2>/dev/null)" = "$LINUX_VERSION" ]; then
    step "Linux source present in $LINUX_DIR"
else
    step "fetching linux-source-6.12=$LINUX_VERSION into $LINUX_DIR"
    mkdir -p "$CACHE"
    ldl="$(mktemp -d "$CACHE/.dl.XXXXXX")"
    (cd "$ldl" && quiet apt-get download -o APT::Sandbox::User=root \
        "linux-source-6.12=$LINUX_VERSION") || { rm -rf "$ldl"; fail "apt-get download linux-source-6.12"; }
    (cd "$ldl" && dpkg-deb --fsys-tarfile ./*.deb | tar -xO ./usr/src/linux-source-6.12.tar.xz \
        | tar -xJ) || { rm -rf "$ldl"; fail "unpacking linux-source-6.12"; }
    echo "$LINUX_VERSION" > "$ldl/linux-source-6.12/.hil-version"
    rm -rf "$LINUX_DIR"
    mv "$ldl/linux-source-6.12" "$LINUX_DIR"
    rm -rf "$ldl"
    step "Linux source extracted"
fi

# busybox-static for arm64, never installed on the host: apt runs with a configuration of its
# own (sources, lists, cache; architecture arm64), so the host's apt state is left alone.
if [ "$WANT_LINUX" != 1 ]; then
    :
elif [ -x "$BUSYBOX_DIR/bin/busybox" ]; then
    step "arm64 busybox present in $BUSYBOX_DIR"
else
    step "fetching busybox-static (arm64) into $BUSYBOX_DIR"
    mkdir -p "$CACHE"
    adir="$(mktemp -d "$CACHE/.apt-arm64.XXXXXX")"
    mkdir -p "$adir/lists/partial" "$adir/cache/archives/partial" "$adir/dl"
    bmirror=$({ grep -hoE '^(URIs:|deb) +[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources \
               /etc/apt/sources.list 2>/dev/null || true; } | awk '{print $2}' | head -n 1)
    echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $bmirror bookworm main" \
        > "$adir/sources.list"
    aopts=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
           -o Dir::Etc::SourceList="$adir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
           -o Dir::State::Lists="$adir/lists" -o Dir::Cache="$adir/cache"
           -o Dir::State::Status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
    quiet apt-get "${aopts[@]}" update || { rm -rf "$adir"; fail "apt-get update (arm64 lists)"; }
    (cd "$adir/dl" && quiet apt-get "${aopts[@]}" download busybox-static) \
        || { rm -rf "$adir"; fail "apt-get download busybox-static (arm64)"; }
    dpkg-deb -x "$adir"/dl/busybox-static_*_arm64.deb "$adir/root" || { rm -rf "$adir"; fail "dpkg-deb -x busybox-static"; }
    rm -rf "$BUSYBOX_DIR"
    mv "$adir/root" "$BUSYBOX_DIR"
    rm -rf "$adir"
    step "arm64 busybox extracted"
fi

for tool in qemu-system-aarch64 aarch64-linux-gnu-gcc dtc make chromium chromedriver; do
    command -v "$tool" >/dev/null || fail "$tool not found after install"
done
rm -f "$LOG"
step "done"
