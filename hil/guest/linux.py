"""Build the Linux guest: a minimal arm64 kernel with Xen dom0 support and the FF-A driver
(``drivers/firmware/arm_ffa``), with an initramfs whose ``/init`` reports what the driver
registered in the fixed ``HILLINUX`` line format (:mod:`hil.guest.linux_log` reads it).

Debian's arm64 kernels leave ``CONFIG_ARM_FFA_TRANSPORT`` unset, so the kernel is built from
Debian's ``linux-source-6.12`` and the initramfs holds Debian's ``busybox-static`` for arm64; both
are fetched by ``scripts/setup-system.sh`` into ``$HIL_CACHE`` (default ``~/.cache/hil/src``).
The kernel is built out of tree (``O=``) from that read-only source: ``allnoconfig`` with only the
options in :data:`KCONFIG`, the initramfs built in (``CONFIG_INITRAMFS_SOURCE`` naming a
``gen_init_cpio`` list, so no root and no ``cpio`` are needed), so the Image is the one dom0
module Xen loads. Like the other firmware builds the result is cached under the build directory
by the sha256 of its inputs, in ``linux-<key>/`` holding ``Image``, ``linux.config`` and
``build.json``; the objects (about 100 MB) are deleted.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hil.firmware.build import BuildError, cached_build, digest, run_logged, tool_version
from hil.firmware.toolchain import Toolchain
from hil.xen.kconfig import read_kconfig

SOURCE_DIR_NAME = "linux-source-6.12"
BUSYBOX_DIR_NAME = "busybox-static-arm64"
VERSION_FILE = ".hil-version"  # the Debian package version setup-system.sh unpacked
RECIPE = "hil-linux-1"  # part of the cache key: change it when the recipe changes the output
BUILD_INFO = "build.json"
# Everything else is off (allnoconfig). Each line must survive olddefconfig; XEN_DOM0 and
# ARM_FFA_SMCCC are selected by the others and checked the same way.
KCONFIG = (
    "CONFIG_PRINTK=y",
    "CONFIG_PRINTK_TIME=y",
    "CONFIG_TTY=y",
    "CONFIG_XEN=y",
    "CONFIG_XEN_DOM0=y",
    "CONFIG_HVC_XEN=y",
    "CONFIG_BLK_DEV_INITRD=y",
    "CONFIG_DEVTMPFS=y",
    "CONFIG_DEVTMPFS_MOUNT=y",
    "CONFIG_PROC_FS=y",
    "CONFIG_SYSFS=y",
    "CONFIG_BINFMT_ELF=y",
    "CONFIG_BINFMT_SCRIPT=y",
    "CONFIG_ARM_FFA_TRANSPORT=y",
    "CONFIG_ARM_FFA_SMCCC=y",
    "CONFIG_OF=y",
    "CONFIG_NR_CPUS=2",
    "CONFIG_INITRAMFS_COMPRESSION_NONE=y",
)
# dom0's command line: hvc0 is Xen's console; panic=-1 reboots at once on a panic, so a crashed
# guest ends the boot (QEMU runs with -no-reboot) instead of hanging until the stage timeout.
DOM0_ARGS = "console=hvc0 earlycon=xenboot rdinit=/init panic=-1 quiet"
# What the kernel needs beside the probe's Xen arguments: the probe lives in 16 MB.
DOM0_XEN_ARGS = ("dom0_mem=128M",)

# The init: a busybox sh script. It prints the FF-A driver's versions from the kernel log, one
# line per device on the arm_ffa bus (each attribute file sysfs gives it), an end line with the
# count, then powers off. Values are printed as sysfs/dmesg give them; the parser normalises.
INIT = r"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
kmsg=$(dmesg)
ver='\([0-9]*\.[0-9]*\)'
drv=$(echo "$kmsg" | sed -n "s/.*ARM FF-A: Driver version $ver.*/\1/p" | head -n 1)
fw=$(echo "$kmsg" | sed -n "s/.*ARM FF-A: Firmware version $ver found.*/\1/p" | head -n 1)
if echo "$kmsg" | grep -q 'ARM FF-A: FFA_VERSION returned not supported'; then
    echo "HILLINUX version unsupported driver=${drv:-none}"
else
    echo "HILLINUX version driver=${drv:-none} firmware=${fw:-none}"
fi
echo "$kmsg" | grep 'ARM FF-A:' | sed 's/^\[[^]]*\] *//; s/^/HILLINUX kmsg /'
n=0
for dev in /sys/bus/arm_ffa/devices/*; do
    [ -e "$dev/partition_id" ] || continue
    line="HILLINUX partition dev=${dev##*/}"
    for attr in "$dev"/*; do
        name=${attr##*/}
        case "$name" in uevent|modalias|driver_override) continue ;; esac
        [ -f "$attr" ] && [ -r "$attr" ] || continue
        line="$line $name=$(head -n 1 "$attr")"
    done
    echo "$line"
    n=$((n + 1))
done
echo "HILLINUX end devices=$n"
# hvc0 writes from a kernel thread: powering off at once loses the tail of what was echoed
# (seen: boots cut after the version line). The reader stops at the end line, so this costs nothing.
sleep 5
poweroff -f
"""


class LinuxSourceError(ValueError):
    """The kernel source or busybox is missing or not what setup-system.sh puts there."""


def _cache_dir() -> Path:
    cache = os.environ.get("HIL_CACHE")
    return Path(cache) if cache else Path.home() / ".cache" / "hil" / "src"


def default_source() -> Path:
    return _cache_dir() / SOURCE_DIR_NAME


def default_busybox() -> Path:
    return _cache_dir() / BUSYBOX_DIR_NAME / "bin" / "busybox"


def missing(source: Path | None = None, busybox: Path | None = None) -> list[str]:
    """What the Linux guest build lacks, one phrase each (empty: it can build)."""
    gone = []
    src = source or default_source()
    if not (src / "Makefile").is_file() or not (src / VERSION_FILE).is_file():
        gone.append(f"Linux source ({src})")
    bb = busybox or default_busybox()
    if not bb.is_file():
        gone.append(f"arm64 busybox ({bb})")
    return gone


@dataclass(frozen=True)
class LinuxBuild:
    """A built guest kernel: the Image (initramfs inside), its ``.config``, and what it is."""

    image: Path
    config: Path
    version: str  # the kernel release, e.g. 6.12.117
    source: str  # Debian package version of the source, e.g. 6.12.117-1~deb12u1

    @classmethod
    def load(cls, directory: Path) -> LinuxBuild:
        info = json.loads((directory / BUILD_INFO).read_text(encoding="utf-8"))
        return cls(directory / "Image", directory / "linux.config", info["version"], info["source"])

    def provenance(self) -> dict[str, str]:
        return {"linux:version": self.version, "linux:source": f"debian:{self.source}"}


def initramfs_list(init: Path, busybox: Path) -> str:
    """A ``gen_init_cpio`` list: busybox with the applets init uses linked to it."""
    applets = ("sh", "mount", "dmesg", "sed", "grep", "head", "echo", "sleep", "poweroff")
    lines = [
        "dir /dev 0755 0 0",
        "nod /dev/console 0600 0 0 c 5 1",
        "dir /bin 0755 0 0",
        "dir /proc 0755 0 0",
        "dir /sys 0755 0 0",
        f"file /bin/busybox {busybox} 0755 0 0",
        *(f"slink /bin/{name} busybox 0777 0 0" for name in applets),
        f"file /init {init} 0755 0 0",
    ]
    return "\n".join(lines) + "\n"


def _make(tc: Toolchain, source: Path, out: Path, *targets: str) -> list[str]:
    return [
        str(tc.make), "-C", str(source), f"O={out}", "ARCH=arm64",
        f"CROSS_COMPILE={tc.cross_compile}", "KBUILD_BUILD_USER=hil", "KBUILD_BUILD_HOST=hil",
        "KBUILD_BUILD_TIMESTAMP=hil", *targets,
    ]  # fmt: skip


def build_linux(
    tc: Toolchain,
    build_dir: Path,
    source: Path | None = None,
    busybox: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> LinuxBuild:
    """Build (or find cached) the guest kernel. Raises LinuxSourceError when the source or
    busybox is missing, BuildError (naming the log) when a build step fails."""
    source = (source or default_source()).resolve()
    busybox = (busybox or default_busybox()).resolve()
    gone = missing(source, busybox)
    if gone:
        raise LinuxSourceError(
            f"missing {', '.join(gone)}: run make test-linux "
            "(or, as root, HIL_LINUX_TIER=1 scripts/setup-system.sh)"
        )
    version = (source / VERSION_FILE).read_text(encoding="utf-8").strip()
    key = digest(
        [
            RECIPE.encode(),
            version.encode(),  # the Debian package version names the source exactly
            busybox.read_bytes(),
            INIT.encode(),
            "\n".join(KCONFIG).encode(),
            DOM0_ARGS.encode(),
            tool_version(tc),
        ]
    )

    def build(out: Path, log: Path) -> None:
        if progress is not None:
            progress(f"building the Linux guest kernel from {source} (log: {log})")
        obj = out / "obj"
        obj.mkdir()
        init = out / "init"
        init.write_text(INIT, encoding="utf-8")
        cpio_list = out / "initramfs.list"
        cpio_list.write_text(initramfs_list(init, busybox), encoding="utf-8")
        fragment = out / "hil.config"
        lines = [*KCONFIG, f'CONFIG_INITRAMFS_SOURCE="{cpio_list}"']
        fragment.write_text("\n".join(lines) + "\n", encoding="utf-8")
        allno = [*_make(tc, source, obj, f"KCONFIG_ALLCONFIG={fragment}", "allnoconfig")]
        run_logged(allno, log, "make allnoconfig (Linux)")
        got = read_kconfig((obj / ".config").read_text(encoding="utf-8").splitlines())
        dropped = [ln for ln in KCONFIG if got.get(ln.partition("=")[0]) != ln.partition("=")[2]]
        if dropped:
            raise BuildError(f"{', '.join(dropped)} did not stick in allnoconfig; see {log}")
        run_logged(_make(tc, source, obj, f"-j{os.cpu_count() or 1}", "Image"), log, "make Image")
        release = (obj / "include" / "config" / "kernel.release").read_text().strip()
        shutil.copyfile(obj / "arch" / "arm64" / "boot" / "Image", out / "Image")
        shutil.copyfile(obj / ".config", out / "linux.config")
        info = {"version": release, "source": version, "kconfig": list(KCONFIG)}
        (out / BUILD_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
        shutil.rmtree(obj)

    build_dir.mkdir(parents=True, exist_ok=True)
    # A lock of its own: the kernel takes minutes, and holding the firmware builds' lock that
    # long would stall every other build (and test worker) sharing the build dir.
    with (build_dir / ".linux.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return LinuxBuild.load(cached_build(build_dir, "linux", key, build))
