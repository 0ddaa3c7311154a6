#!/usr/bin/env bash
# Install the system tools the QEMU tier needs and fetch the TF-A source it builds; also the
# headless Chromium the report test opens report.html in, and for the Linux guest Debian's arm64
# kernel with its FF-A modules and an arm64 static busybox.
# Idempotent and non-interactive: each step is skipped when its result is already there.
# Usage (as root): scripts/setup-system.sh        HIL_CACHE=<dir> overrides the source cache dir.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

TFA_VERSION="2.12.1+dfsg-1"
CACHE="${HIL_CACHE:-$HOME/.cache/hil/src}"
TFA_DIR="$CACHE/tf-a-2.12.1"
SRC_LIST=/etc/apt/sources.list.d/hil-deb-src.sources
# The Linux guest's kernel: Debian's 7.3 series for arm64, cloud flavour (trixie-backports).
KERNEL_SERIES=7.3
KERNEL_FLAVOUR=cloud-arm64
ARM64_SUITES="trixie trixie-backports"
KERNEL_DIR="$CACHE/linux-debian-arm64"
BUSYBOX_DIR="$CACHE/busybox-static-arm64"
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

# The same mirror the system already uses for Debian (its first main-archive URI).
DEBIAN_MIRROR=$({ grep -hoE '^(URIs:|deb) +[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources \
                  /etc/apt/sources.list 2>/dev/null || true; } | awk '{print $2}' | head -n 1)
[ -n "$DEBIAN_MIRROR" ] || fail "no Debian mirror found in the system's apt sources"

# deb-src for trixie lives in its own file so the system's own sources stay untouched.
need_update=0
if [ ! -f "$SRC_LIST" ]; then
    step "adding deb-src (trixie) in $SRC_LIST"
    cat > "$SRC_LIST" <<SRC
Types: deb-src
URIs: $DEBIAN_MIRROR
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    need_update=1
else
    step "deb-src entry present"
fi

if [ ! -f "$TFA_DIR/Makefile" ] || [ "${#missing[@]}" -gt 0 ] \
    || [ "$need_update" -eq 1 ]; then
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

# The Linux guest: Debian's prebuilt arm64 kernel (its FF-A driver is a module from 7.2 on) and
# busybox-static for arm64, never installed on the host: apt runs with a configuration of its own
# (sources, lists, cache; architecture arm64), so the host's apt state is left alone. The kernel
# series is pinned, not the build (mirrors drop old ones): the newest linux-binary-$KERNEL_SERIES.*
# in the list (a later series once that one is gone), recorded in kernel.json (hil.guest.linux
# reads it into the provenance).
if [ -f "$KERNEL_DIR/kernel.json" ] && [ -x "$BUSYBOX_DIR/bin/busybox" ]; then
    step "Linux guest kernel ($(cat "$KERNEL_DIR/kernel.json")) and arm64 busybox present"
else
    step "fetching Debian's arm64 kernel ($KERNEL_SERIES.*-$KERNEL_FLAVOUR) and busybox-static"
    mkdir -p "$CACHE"
    adir="$(mktemp -d "$CACHE/.apt-arm64.XXXXXX")"
    trap 'rm -rf "$adir" "${dl:-}"' EXIT
    mkdir -p "$adir/lists/partial" "$adir/cache/archives/partial" "$adir/dl"
    for suite in $ARM64_SUITES; do
        echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR $suite main"
    done > "$adir/sources.list"
    aopts=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
           -o Dir::Etc::SourceList="$adir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
           -o Dir::State::Lists="$adir/lists" -o Dir::Cache="$adir/cache"
           -o Dir::State::Status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
    quiet apt-get "${aopts[@]}" update || fail "apt-get update (arm64 lists)"
    binary=$(apt-cache "${aopts[@]}" pkgnames "linux-binary-$KERNEL_SERIES." \
             | grep -E "^linux-binary-$KERNEL_SERIES\.[0-9]+\+[a-z0-9]+-$KERNEL_FLAVOUR\$" \
             | sort -V | tail -n 1 || true)
    if [ -z "$binary" ]; then
        # Backports move on to newer series and drop the old: a fresh machine must still get a
        # kernel with the driver. The newest later series is taken and said so; the Linux tier
        # compares its driver with the oracle (checked on 7.3.4), so a change in it shows there.
        newer=$(apt-cache "${aopts[@]}" pkgnames "linux-binary-" \
                | grep -E "^linux-binary-[0-9]+\.[0-9]+\.[0-9]+\+[a-z0-9]+-$KERNEL_FLAVOUR\$" \
                | sort -V | tail -n 1 || true)
        series=$(echo "${newer#linux-binary-}" | cut -d. -f1,2)
        if [ -n "$newer" ] && [ "$(printf '%s\n' "$KERNEL_SERIES" "$series" | sort -V | head -n 1)" = "$KERNEL_SERIES" ]; then
            step "no $KERNEL_SERIES.* kernel left in $ARM64_SUITES: taking $newer (series $series)"
            binary="$newer"
        fi
    fi
    [ -n "$binary" ] || fail "no linux-binary-$KERNEL_SERIES.*-$KERNEL_FLAVOUR (or later) for arm64 in $ARM64_SUITES"
    release="${binary#linux-binary-}"
    version=$(apt-cache "${aopts[@]}" show "$binary" | sed -n 's/^Version: //p' | sort -V | tail -n 1)
    (cd "$adir/dl" && quiet apt-get "${aopts[@]}" download "$binary=$version" \
        "linux-modules-$release=$version" busybox-static) \
        || fail "apt-get download $binary=$version linux-modules-$release busybox-static (arm64)"
    for deb in "$adir"/dl/*.deb; do dpkg-deb -x "$deb" "$adir/root" || fail "dpkg-deb -x $deb"; done
    mods="$adir/root/usr/lib/modules/$release"
    mkdir -p "$adir/kernel"
    cp "$mods/vmlinuz" "$adir/kernel/vmlinuz" || fail "no vmlinuz in $binary"
    for m in ffa-core ffa-module; do
        cp "$mods"/kernel/drivers/firmware/arm_ffa/"$m".ko* "$adir/kernel/" \
            || fail "no $m.ko* in linux-modules-$release (is CONFIG_ARM_FFA_TRANSPORT=m?)"
    done
    printf '{"release": "%s", "package": "debian:%s=%s"}\n' "$release" "$binary" "$version" \
        > "$adir/kernel/kernel.json"
    rm -rf "$KERNEL_DIR" "$BUSYBOX_DIR"
    mkdir -p "$BUSYBOX_DIR/bin"
    cp "$adir/root/bin/busybox" "$BUSYBOX_DIR/bin/busybox" 2>/dev/null \
        || cp "$adir/root/usr/bin/busybox" "$BUSYBOX_DIR/bin/busybox" || fail "no busybox in busybox-static"
    mv "$adir/kernel" "$KERNEL_DIR"
    step "Linux guest: $binary=$version, busybox-static (arm64)"
fi

for tool in qemu-system-aarch64 aarch64-linux-gnu-gcc dtc make chromium chromedriver; do
    command -v "$tool" >/dev/null || fail "$tool not found after install"
done
rm -f "$LOG"
step "done"
