"""Per-scenario firmware bundle for a board: patched images and a repacked FIP.

The expensive builds (:func:`hil.firmware.build.build_firmware`) happen once; a bundle only
writes the scenario blob into the SPMC image's window and the probe plan into the probe's
window, compiles the SPMC manifest and repacks the FIP with ``fiptool update`` (well under 1 s).
The directory and its ``bundle.json`` are written by :func:`hil.bundle.write_bundle`, so
virtual and real boards share one bundle format.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hil.bundle import Bundle, write_bundle
from hil.firmware.build import BuildError, Firmware, run_logged
from hil.firmware.manifest import manifest_dts
from hil.guest.linux import GuestKernel
from hil.scenario import Scenario
from hil.xen.oracle import XenOptions

BIOS_FIP_OFFSET = 0x40000  # qemu_fw.bios = bl1.bin, then the FIP at 256 KiB (plat/qemu)
BOARDS = ("qemu-virt",)

# Bundle roles of the images (hil.bundle adds "spmc_config" and "probe_plan").
BIOS, FIP, SPMC_IMAGE, PROBE_IMAGE = "qemu_fw_bios", "fip", "spmc_image", "probe_image"
MANIFEST_DTS, MANIFEST_DTB, XEN = "spmc_manifest_dts", "spmc_manifest_dtb", "xen"
XEN_CONFIG = "xen_config"  # the .config of a Xen hil built
# The Linux guest booted as dom0 instead of the probe (named in place: hil.bundle.write_bundle).
LINUX_IMAGE, LINUX_INITRD = "linux_image", "linux_initrd"


@dataclass(frozen=True)
class FirmwareBundle:
    """A written bundle plus the images a QEMU boot uses (all paths inside the bundle)."""

    bundle: Bundle
    bios: Path
    """qemu_fw.bios (BL1 + FIP) for ``-bios``."""
    probe: Path
    """The probe with its plan: BL33 inside the FIP, or Xen's dom0 module when :attr:`xen`."""
    xen: Path | None
    """Xen image used as BL33 (path A in qemu-stack.md §3), or None: the probe is BL33."""
    linux: GuestKernel | None = None
    """The Linux guest Xen boots as dom0 instead of the probe, or None."""

    @property
    def xen_options(self) -> XenOptions:
        """How Xen is booted (its command line); the oracle reads the same from the bundle."""
        return self.bundle.xen_options

    @classmethod
    def of(cls, bundle: Bundle) -> FirmwareBundle:
        """The images of a bundle written by :func:`make_bundle` (e.g. one deployed to a board)."""
        xen = bundle.files.get(XEN)
        linux = None
        if LINUX_IMAGE in bundle.files:
            release, package = GuestKernel.facts_of(bundle.facts)
            linux = GuestKernel(
                bundle.path(LINUX_IMAGE), bundle.path(LINUX_INITRD), release, package
            )
        probe = bundle.path(PROBE_IMAGE)
        return cls(bundle=bundle, bios=bundle.path(BIOS), probe=probe, xen=xen, linux=linux)


def build_images(
    fw: Firmware, spmc_blob: bytes, probe_plan: bytes, out_dir: Path, xen: Path | None = None
) -> dict[str, Path]:
    """Write the per-scenario images for QEMU virt into ``out_dir``; returns role -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tc = fw.toolchain
    spmc = fw.spmc.patched(spmc_blob, out_dir / "spmc.bin")
    probe = fw.probe.patched(probe_plan, out_dir / "probe.bin")

    dts = out_dir / "spmc_manifest.dts"
    dts.write_text(manifest_dts(int.from_bytes(spmc_blob[8:12], "little")))
    dtb = out_dir / "spmc_manifest.dtb"
    log = out_dir / "images.log"
    log.unlink(missing_ok=True)
    run_logged([tc.dtc, "-I", "dts", "-O", "dtb", "-o", dtb, dts], log, "dtc")

    fip = out_dir / "fip.bin"
    shutil.copyfile(fw.tfa.fip, fip)
    update = [fw.tfa.fiptool, "update", "--tos-fw", spmc, "--tos-fw-config", dtb]
    run_logged([*update, "--nt-fw", xen or probe, fip], log, "fiptool")

    bl1 = fw.tfa.bl1.read_bytes()
    if len(bl1) > BIOS_FIP_OFFSET:
        raise BuildError(f"{fw.tfa.bl1}: BL1 is larger than {BIOS_FIP_OFFSET:#x} bytes")
    bios = out_dir / "qemu_fw.bios"
    bios.write_bytes(bl1.ljust(BIOS_FIP_OFFSET, b"\0") + fip.read_bytes())
    images = {
        BIOS: bios,
        FIP: fip,
        SPMC_IMAGE: spmc,
        PROBE_IMAGE: probe,
        MANIFEST_DTS: dts,
        MANIFEST_DTB: dtb,
    }
    if xen is not None:
        images[XEN] = xen
    return images


@dataclass(frozen=True)
class XenImage:
    """The Xen a bundle boots: the image, the options it is booted with (what the oracle
    assumes), its ``.config`` when hil built it, and report facts (version, source, hashes)."""

    image: Path
    options: XenOptions
    config: Path | None = None
    facts: Mapping[str, str] = field(default_factory=dict)


def make_bundle(
    fw: Firmware,
    scenario: Scenario,
    directory: Path,
    board: str = "qemu-virt",
    xen: XenImage | None = None,
    linux: GuestKernel | None = None,
) -> FirmwareBundle:
    """Write ``scenario``'s bundle for ``board`` into ``directory`` (files are replaced); with
    ``linux`` (and ``xen``), Xen boots that guest as dom0 instead of the probe."""
    if linux is not None and xen is None:
        raise ValueError("the Linux guest runs as Xen's dom0: a bundle with it needs a Xen")
    if board not in BOARDS:
        raise ValueError(f"board {board!r}: firmware images can be built for {', '.join(BOARDS)}")
    directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="images-", dir=directory.parent) as staging:
        images = build_images(
            fw,
            scenario.spmc_config().encode(),
            scenario.probe_plan().encode(),
            Path(staging),
            xen.image if xen else None,
        )
        if xen is not None and xen.config is not None:
            images[XEN_CONFIG] = xen.config
        options, facts = (xen.options, dict(xen.facts)) if xen else (None, {})
        in_place = {}
        if linux is not None:
            facts.update(linux.provenance())
            in_place = {LINUX_IMAGE: linux.image, LINUX_INITRD: linux.initrd}
        bundle = write_bundle(scenario, board, directory, images, options, facts, in_place)
    return FirmwareBundle.of(bundle)
