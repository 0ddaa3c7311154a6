"""Xen on QEMU virt without a bootloader ("path A", shared/reference/qemu-stack.md §3).

TF-A hands over to Xen as BL33 with the DTB address in x0. QEMU places ``-dtb`` at the base of
RAM for firmware boots, so the DTB we give it is QEMU's own (dumped with the same machine
options) plus a /chosen node describing Xen's command line and the dom0 module (the probe),
which ``-device loader`` puts at :data:`DOM0_ADDR`; a dom0 with an initramfs (the Linux guest)
gets a second, ``multiboot,ramdisk`` module right after it (:func:`initrd_addr`).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hil.emulator.qemu import Loader, QemuConfig, QemuError, machine_args
from hil.firmware import xen_dt
from hil.firmware.bundle import FirmwareBundle
from hil.firmware.xen_dt import DOM0_ARGS
from hil.xen.oracle import XenOptions

VIRT_DTB = "virt.dtb"  # QEMU's own, beside the DTB a boot uses

DOM0_ADDR = 0x47000000  # below Xen's 1:1 dom0 RAM (0x48000000) so it is not overwritten
# The board's own part of Xen's command line; what the oracle must know is added from the
# bundle's XenOptions (XenOptions.boot_args), never written here. The probe needs a few pages:
# a small dom0 and no boot-time scrubbing of free RAM keep Xen's memset out of each boot (a
# 128 MB 1:1 dom0 plus scrubbing ~1.8 GB nearly doubled QEMU's CPU time per boot under TCG), and
# neither changes what Xen's FF-A mediator does.
BOARD_XEN_ARGS = (
    "console=dtuart",
    "dtuart=/pl011@9000000",
    "dom0_mem=16M",
    "bootscrub=0",
    "loglvl=all",
    "guest_loglvl=all",
)
# Xen wants modules 2 MB aligned (it maps them with 2 MB pages when it can).
MODULE_ALIGN = 0x200000


def initrd_addr(kernel_size: int) -> int:
    """Where the initramfs goes: the first 2 MB boundary after the kernel. Xen keeps boot
    modules out of its heap until dom0 is built, so dom0's RAM never lands on them."""
    return (DOM0_ADDR + kernel_size + MODULE_ALIGN - 1) & ~(MODULE_ALIGN - 1)


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise QemuError(f"{what} failed: {result.stderr.strip() or result.returncode}")


def xen_command_line(options: XenOptions) -> str:
    """Xen's command line on this board for a bundle recording ``options``."""
    return xen_dt.xen_command_line(BOARD_XEN_ARGS, options)


def xen_dtb(
    qemu: Path,
    out: Path,
    dom0: Path,
    smp: int,
    mem_mb: int,
    xen_args: str,
    dom0_args: str = DOM0_ARGS,
    initrd: Path | None = None,
) -> Path:
    """Write QEMU virt's DTB with Xen's /chosen boot module entries for ``dom0`` (and its
    ``initrd``, if any) to ``out``."""
    size = dom0.stat().st_size
    initrd_size = initrd.stat().st_size if initrd is not None else 0
    work = out.parent / VIRT_DTB
    dtb = _xen_dtb(qemu, work, size, initrd_size, smp, mem_mb, xen_args, dom0_args)
    # Every case of a board boots the same DTB: reading it back is a tenth of rewriting it
    # (a MB, several ms of each case before QEMU starts).
    if not (out.is_file() and out.read_bytes() == dtb):
        out.write_bytes(dtb)
    return out


# One lock per machine DTB: a board that starts making it as it opens (hil.boards.qemu) and its
# first boot, which needs it, make it once between them.
_virt_locks: dict[tuple[Path, Path, int, int], threading.Lock] = {}
_virt_locks_lock = threading.Lock()


def virt_dtb(qemu: Path, work: Path, smp: int, mem_mb: int) -> bytes:
    """QEMU virt's own DTB for this machine (a whole QEMU run, dumpdtb, to ``work``), made once
    per process: with the edits of :func:`xen_dtb` it depends on nothing else."""
    key = (qemu, work, smp, mem_mb)
    with _virt_locks_lock:
        lock = _virt_locks.setdefault(key, threading.Lock())
    with lock:
        return _virt_dtb(*key)


@cache
def _virt_dtb(qemu: Path, work: Path, smp: int, mem_mb: int) -> bytes:
    work.parent.mkdir(parents=True, exist_ok=True)
    _run([str(qemu), *machine_args(smp, mem_mb), "-machine", f"dumpdtb={work}"], "qemu dumpdtb")
    return work.read_bytes()


@cache
def _xen_dtb(
    qemu: Path,
    work: Path,
    size: int,
    initrd_size: int,
    smp: int,
    mem_mb: int,
    xen_args: str,
    dom0_args: str,
) -> bytes:
    """The DTB for a dom0 of ``size`` bytes, made once per process and board: it depends on
    nothing else (every scenario's probe has the same size), and making it runs a whole QEMU
    (dumpdtb) and seven fdtput, 0.2 s of each case on a quiet 2-core host, seconds on a busy one."""
    fdtput = shutil.which("fdtput")
    if fdtput is None:
        raise QemuError("missing fdtput (device-tree-compiler): run scripts/setup-system.sh")
    machine = virt_dtb(qemu, work, smp, mem_mb)
    work.write_bytes(machine)  # edited in place below
    module = f"/chosen/module@{DOM0_ADDR:x}"
    at = initrd_addr(size)
    ramdisk = f"/chosen/module@{at:x}"
    initrd = (
        ["-c", str(work), ramdisk],
        ["-t", "s", str(work), ramdisk, "compatible", "multiboot,ramdisk", "multiboot,module"],
        ["-t", "x", str(work), ramdisk, "reg", "0", f"{at:x}", "0", f"{initrd_size:x}"],
    )
    for argv in (
        ["-t", "i", str(work), "/chosen", "#address-cells", "2"],
        ["-t", "i", str(work), "/chosen", "#size-cells", "2"],
        ["-t", "s", str(work), "/chosen", "xen,xen-bootargs", xen_args],
        ["-t", "s", str(work), "/chosen", "xen,dom0-bootargs", dom0_args],
        ["-c", str(work), module],
        ["-t", "s", str(work), module, "compatible", "multiboot,kernel", "multiboot,module"],
        ["-t", "x", str(work), module, "reg", "0", f"{DOM0_ADDR:x}", "0", f"{size:x}"],
        *(initrd if initrd_size else ()),
    ):
        _run([fdtput, *argv], "fdtput")
    return work.read_bytes()


@dataclass(frozen=True)
class Dom0:
    """A dom0 other than the bundle's probe (the Linux guest): its image, its command line,
    the Xen options it needs beside the board's (later options win in Xen's parser) and its
    initramfs, if it has one outside the image."""

    image: Path
    args: str
    xen_args: tuple[str, ...] = ()
    initrd: Path | None = None


def xen_config(
    fb: FirmwareBundle,
    qemu: Path,
    workdir: Path,
    smp: int = 2,
    mem_mb: int = 2048,
    dom0: Dom0 | None = None,
) -> QemuConfig:
    """The QEMU configuration booting ``fb`` (built with a Xen image) with the probe, or
    ``dom0``, as dom0."""
    if fb.xen is None:
        raise QemuError(f"{fb.bundle.directory}: bundle has no Xen image (probe runs as BL33)")
    workdir.mkdir(parents=True, exist_ok=True)
    dom0 = dom0 or Dom0(fb.probe, DOM0_ARGS)
    xen_args = " ".join((xen_command_line(fb.xen_options), *dom0.xen_args))
    dtb = xen_dtb(
        qemu, workdir / "xen.dtb", dom0.image, smp, mem_mb, xen_args, dom0.args, dom0.initrd
    )
    loaders = [Loader(dom0.image, DOM0_ADDR)]
    if dom0.initrd is not None:
        loaders.append(Loader(dom0.initrd, initrd_addr(dom0.image.stat().st_size)))
    return QemuConfig(
        bios=fb.bios,
        qemu=qemu,
        smp=smp,
        mem_mb=mem_mb,
        dtb=dtb,
        loaders=tuple(loaders),
    )
