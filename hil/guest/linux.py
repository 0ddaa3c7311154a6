"""The Linux guest: Debian's prebuilt arm64 kernel as Xen's dom0, with an initramfs that loads
the FF-A driver's modules (``drivers/firmware/arm_ffa``) and whose ``/init`` reports what the
driver registered in the fixed ``HILLINUX`` line format (:mod:`hil.guest.linux_log` reads it).

Debian's 6.1 and 6.12 arm64 kernels leave ``CONFIG_ARM_FFA_TRANSPORT`` unset; from 7.2 on it is
a module (``ffa-core.ko`` for the bus, ``ffa-module.ko`` for the driver, xz-compressed), with
``XEN_DOM0`` and ``HVC_XEN`` built in. ``scripts/setup-system.sh`` fetches the newest
``linux-binary-7.3.*-cloud-arm64`` and its ``linux-modules`` package from trixie-backports (the
cloud flavour: the same driver, fewer built-in drivers to probe under TCG) and Debian's
``busybox-static`` for arm64 into ``$HIL_CACHE`` (default ``~/.cache/hil/src``), and records the
package and version it took in ``kernel.json``: mirrors drop old versions, so the series is
pinned, not the exact build. Verified with 7.3.4-1~bpo13+1 (kernel 7.3.4+deb13-cloud-arm64).

Nothing is compiled: the Image is used as shipped (a gzip'd Image or an EFI zboot image is
unpacked first, :func:`kernel_image`), the initramfs is a newc cpio written here
(:func:`newc_archive`, no host ``cpio``), loaded by Xen as dom0's ramdisk module. Both are
cached under the build directory by the sha256 of their inputs, in ``linux-guest-<key>/``.

A lab's own kernel works the same way (:func:`prepare_guest` with ``kernel_dir``): an arm64 Image
with Xen dom0 support and the FF-A driver, built in (no modules) or as the two modules.
"""

from __future__ import annotations

import gzip
import json
import lzma
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hil.firmware.build import cached_build, digest

KERNEL_DIR_NAME = "linux-debian-arm64"
BUSYBOX_DIR_NAME = "busybox-static-arm64"
KERNEL_INFO = "kernel.json"  # what setup-system.sh fetched: package, version, kernel release
RECIPE = "hil-linux-guest-1"  # part of the cache key: change it when the recipe changes the output
BUILD_INFO = "build.json"
# The driver's modules in load order (ffa-module needs ffa-core's bus). A kernel with the
# driver built in has neither file; the init then loads nothing.
MODULES = ("ffa-core", "ffa-module")
# dom0's command line: hvc0 is Xen's console; panic=-1 reboots at once on a panic, so a crashed
# guest ends the boot (QEMU runs with -no-reboot) instead of hanging until the stage timeout.
# acpi=off: QEMU's DTB is what describes the board (shared/reference/linux-dom0.md). cma=0:
# Debian's kernel reserves 64 MB for CMA, which left 14 MB of a 128 MB dom0 free and the boot
# stalled before init (seen with 7.3.4: 120 s timeout; with cma=0 init runs 2.6 s in).
DOM0_ARGS = "console=hvc0 earlycon=xenboot rdinit=/init panic=-1 acpi=off cma=0 quiet"
# What the kernel needs beside the probe's Xen arguments: the probe lives in 16 MB; the generic
# kernel's 42 MB Image unpacks its initramfs and modules in 128 MB.
DOM0_XEN_ARGS = ("dom0_mem=128M",)
ARM64_MAGIC = b"ARM\x64"  # at offset 0x38 of every arm64 Image (Documentation/arch/arm64/booting)
ARM64_MAGIC_AT = 0x38

# The init: a busybox sh script. It loads the driver's modules, prints the FF-A driver's
# versions from the kernel log, one line per device on the arm_ffa bus (each attribute file
# sysfs gives it), an end line with the count, then powers off. Values are printed as
# sysfs/dmesg give them; the parser normalises.
INIT = r"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
for m in $(cat /lib/modules/order 2>/dev/null); do
    insmod "/lib/modules/$m.ko" || echo "HILLINUX kmsg insmod $m failed"
done
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
APPLETS = ("sh", "mount", "dmesg", "sed", "grep", "head", "echo", "sleep", "poweroff", "insmod")


class LinuxSourceError(ValueError):
    """The kernel, its modules or busybox are missing or not what setup-system.sh puts there."""


def _cache_dir() -> Path:
    cache = os.environ.get("HIL_CACHE")
    return Path(cache) if cache else Path.home() / ".cache" / "hil" / "src"


def default_kernel_dir() -> Path:
    return _cache_dir() / KERNEL_DIR_NAME


def default_busybox() -> Path:
    return _cache_dir() / BUSYBOX_DIR_NAME / "bin" / "busybox"


def missing(kernel_dir: Path | None = None, busybox: Path | None = None) -> list[str]:
    """What the Linux guest lacks, one phrase each (empty: it can boot)."""
    gone = []
    kdir = kernel_dir or default_kernel_dir()
    if not (kdir / "vmlinuz").is_file() or not (kdir / KERNEL_INFO).is_file():
        gone.append(f"arm64 Linux kernel ({kdir})")
    bb = busybox or default_busybox()
    if not bb.is_file():
        gone.append(f"arm64 busybox ({bb})")
    return gone


@dataclass(frozen=True)
class GuestKernel:
    """A bootable Linux guest: the raw arm64 Image, the initramfs Xen loads beside it, and what
    the kernel is."""

    image: Path
    initrd: Path
    release: str  # the kernel release, e.g. 7.3.4+deb13-cloud-arm64
    package: str  # where it came from, e.g. debian:linux-binary-...=7.3.4-1~bpo13+1

    @classmethod
    def load(cls, directory: Path) -> GuestKernel:
        info = json.loads((directory / BUILD_INFO).read_text(encoding="utf-8"))
        return cls(
            directory / "Image", directory / "initramfs.cpio", info["release"], info["package"]
        )

    def provenance(self) -> dict[str, str]:
        return {"linux:release": self.release, "linux:package": self.package}

    @staticmethod
    def facts_of(facts: Mapping[str, str]) -> tuple[str, str]:
        """(release, package) back from a bundle's facts (:meth:`provenance`)."""
        return facts.get("linux:release", "unknown"), facts.get("linux:package", "unknown")


# -- the kernel image -------------------------------------------------------------------------

_ZBOOT = struct.Struct("<4s4sII8s32s")  # drivers/firmware/efi/libstub/zboot-header.S
_DECOMPRESS = {"gzip": gzip.decompress, "xz": lzma.decompress, "lzma": lzma.decompress}


def _decompress(kind: str, data: bytes, what: str) -> bytes:
    try:
        unpack = _DECOMPRESS[kind]
    except KeyError:
        known = ", ".join(_DECOMPRESS)
        raise LinuxSourceError(f"{what}: {kind} compression is not supported ({known})") from None
    try:
        return unpack(data)
    except (OSError, lzma.LZMAError, EOFError) as exc:
        raise LinuxSourceError(f"{what}: corrupt {kind} data ({exc})") from None


def kernel_image(data: bytes, what: str) -> bytes:
    """The raw arm64 Image Xen boots, from a plain Image, a gzip'd one, or an EFI zboot image
    (a PE whose DOS header says ``zimg``, the payload offset and size, and the compression;
    Xen does not unpack zboot images). Unpacking once here also spares Xen's per-boot gunzip,
    slow under TCG."""
    if data[:2] == b"\x1f\x8b":
        data = _decompress("gzip", data, what)
    elif data[:2] == b"MZ" and data[4:8] == b"zimg":
        _, _, offset, size, _, comp = _ZBOOT.unpack_from(data)
        kind = comp.split(b"\0", 1)[0].decode("ascii", "replace")
        if offset + size > len(data):
            raise LinuxSourceError(f"{what}: zboot payload {offset:#x}+{size:#x} past the file")
        data = _decompress(kind, data[offset : offset + size], what)
    if data[ARM64_MAGIC_AT : ARM64_MAGIC_AT + 4] != ARM64_MAGIC:
        raise LinuxSourceError(f"{what}: not an arm64 Linux Image (no ARM\\x64 magic at 0x38)")
    return data


def read_module(path: Path) -> bytes:
    """A kernel module's ELF bytes: busybox insmod passes them to init_module as they are, so
    a compressed ``.ko.xz``/``.ko.gz`` is unpacked here."""
    data = path.read_bytes()
    if path.suffix == ".ko":
        return data
    kinds = {".xz": "xz", ".gz": "gzip"}
    if path.suffix not in kinds:
        raise LinuxSourceError(f"{path}: unknown module compression {path.suffix!r}")
    return _decompress(kinds[path.suffix], data, str(path))


def find_module(kernel_dir: Path, name: str) -> Path | None:
    """``name``.ko (or compressed) under ``kernel_dir``; None when the kernel has it built in."""
    found = sorted(p for p in kernel_dir.rglob(f"{name}.ko*") if p.is_file())
    return found[0] if found else None


# -- the initramfs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CpioEntry:
    """One file, directory, symlink or device node of a newc archive."""

    name: str
    mode: int  # with the file type bits (0o100000 file, 0o040000 dir, 0o120000 link, ...)
    data: bytes = b""  # a file's contents or a symlink's target
    rdev: tuple[int, int] = (0, 0)


S_DIR, S_FILE, S_LINK, S_CHR = 0o040000, 0o100000, 0o120000, 0o020000


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def newc_archive(entries: Sequence[CpioEntry]) -> bytes:
    """The entries as an SVR4 "newc" cpio (the format the kernel unpacks an initramfs from):
    per entry a 110-byte ASCII header, the NUL-ended name and the data, each padded to 4 bytes,
    then the ``TRAILER!!!`` entry. Owner root, mtime 0: the same inputs give the same bytes."""
    out = bytearray()
    for ino, entry in enumerate([*entries, CpioEntry("TRAILER!!!", 0)], start=1):
        name = entry.name.encode() + b"\0"
        nlink = 2 if entry.mode & 0o170000 == S_DIR else 1
        fields = (ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, *entry.rdev, len(name), 0)
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        out += _pad4(header + name) + _pad4(entry.data)
    return bytes(out)


def initramfs_entries(busybox: bytes, modules: dict[str, bytes]) -> list[CpioEntry]:
    """busybox with the applets the init uses linked to it, the modules in load order, the
    init, and /dev/console (the kernel opens it for init's stdio before devtmpfs exists)."""
    return [
        *(CpioEntry(d, S_DIR | 0o755) for d in ("dev", "bin", "proc", "sys", "lib", "lib/modules")),
        CpioEntry("dev/console", S_CHR | 0o600, rdev=(5, 1)),
        CpioEntry("bin/busybox", S_FILE | 0o755, busybox),
        *(CpioEntry(f"bin/{a}", S_LINK | 0o777, b"busybox") for a in APPLETS),
        *(CpioEntry(f"lib/modules/{n}.ko", S_FILE | 0o644, d) for n, d in modules.items()),
        CpioEntry("lib/modules/order", S_FILE | 0o644, "".join(f"{n}\n" for n in modules).encode()),
        CpioEntry("init", S_FILE | 0o755, INIT.encode()),
    ]


def kernel_info(kernel_dir: Path) -> tuple[str, str]:
    """(release, package) from ``kernel_dir``'s ``kernel.json``; LinuxSourceError naming the
    file when the directory, its ``vmlinuz`` or that record is missing or malformed (checked
    when a lab naming the directory as ``dom0_kernel`` loads, and before each preparation)."""
    if not kernel_dir.is_dir():
        raise LinuxSourceError(f"{kernel_dir} is not a directory")
    if not (kernel_dir / "vmlinuz").is_file():
        raise LinuxSourceError(f"{kernel_dir}: no vmlinuz (the arm64 kernel Image)")
    info_file = kernel_dir / KERNEL_INFO
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
        return str(info["release"]), str(info["package"])
    except OSError as exc:
        raise LinuxSourceError(f"{info_file}: cannot read: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        why = f"needs JSON with release and package ({exc})"
        raise LinuxSourceError(f"{info_file}: {why}") from None


def prepare_guest(
    build_dir: Path, kernel_dir: Path | None = None, busybox: Path | None = None
) -> GuestKernel:
    """The guest kernel and its initramfs (made once, cached by input hash). ``kernel_dir``
    holds ``vmlinuz`` (any form :func:`kernel_image` takes), the FF-A modules unless built in,
    and ``kernel.json`` (``release`` and ``package``); the default is what setup-system.sh
    fetched. Raises LinuxSourceError, naming the file, when something is missing or bad."""
    kdir = (kernel_dir or default_kernel_dir()).resolve()
    bb = (busybox or default_busybox()).resolve()
    gone = missing(kdir, bb)
    if gone:
        raise LinuxSourceError(f"missing {', '.join(gone)}: run (as root) scripts/setup-system.sh")
    release, package = kernel_info(kdir)
    vmlinuz = kdir / "vmlinuz"
    found = {name: find_module(kdir, name) for name in MODULES}
    modules = {name: path for name, path in found.items() if path is not None}
    key = digest(
        [
            RECIPE.encode(),
            vmlinuz.read_bytes(),
            *(p.read_bytes() for p in modules.values()),
            bb.read_bytes(),
            INIT.encode(),
        ]
    )

    def build(out: Path, log: Path) -> None:
        (out / "Image").write_bytes(kernel_image(vmlinuz.read_bytes(), str(vmlinuz)))
        loaded = {name: read_module(path) for name, path in modules.items()}
        cpio = newc_archive(initramfs_entries(bb.read_bytes(), loaded))
        (out / "initramfs.cpio").write_bytes(cpio)
        record = {"release": release, "package": package, "modules": sorted(modules)}
        (out / BUILD_INFO).write_text(json.dumps(record, indent=2), encoding="utf-8")

    return GuestKernel.load(cached_build(build_dir, "linux-guest", key, build))
