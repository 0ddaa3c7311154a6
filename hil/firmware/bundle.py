"""Per-scenario firmware bundle for a board: patched images and a repacked FIP.

The expensive builds (:func:`hil.firmware.build.build_firmware`) happen once; a bundle only
writes the scenario blob into the SPMC image's window and the probe plan into the probe's
window, compiles the SPMC manifest and repacks the FIP with ``fiptool update`` (well under 1 s).
The directory and its ``bundle.json`` are written by :func:`hil.bundle.write_bundle`, so
virtual and real boards share one bundle format.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from hil.atomic import atomic_write
from hil.bundle import Bundle, write_bundle
from hil.config import display_path
from hil.errors import ConfigError, HilError, InfraError
from hil.firmware import toolchain
from hil.firmware.build import BuildError, Firmware, build_firmware, default_build_dir, run_logged
from hil.firmware.manifest import manifest_dts
from hil.firmware.xen import PrebuiltXen, XenBuild, XenSource, XenSourceError, build_xen
from hil.scenario import Scenario
from hil.xen.oracle import XenOptions

if TYPE_CHECKING:
    from hil.lab import BoardConfig

BIOS_FIP_OFFSET = 0x40000  # qemu_fw.bios = bl1.bin, then the FIP at 256 KiB (plat/qemu)
BOARDS = ("qemu-virt",)

# Bundle roles of the images (hil.bundle adds "spmc_config" and "probe_plan").
BIOS, FIP, SPMC_IMAGE, PROBE_IMAGE = "qemu_fw_bios", "fip", "spmc_image", "probe_image"
MANIFEST_DTS, MANIFEST_DTB, XEN = "spmc_manifest_dts", "spmc_manifest_dtb", "xen"
XEN_CONFIG = "xen_config"  # the .config of a Xen hil built


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

    @property
    def xen_options(self) -> XenOptions:
        """How Xen is booted (its command line); the oracle reads the same from the bundle."""
        return self.bundle.xen_options

    @classmethod
    def of(cls, bundle: Bundle) -> FirmwareBundle:
        """The images of a bundle written by :func:`make_bundle` (e.g. one deployed to a board)."""
        xen = bundle.files.get(XEN)
        return cls(bundle=bundle, bios=bundle.path(BIOS), probe=bundle.path(PROBE_IMAGE), xen=xen)


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
) -> FirmwareBundle:
    """Write ``scenario``'s bundle for ``board`` into ``directory`` (files are replaced)."""
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
        options, facts = (xen.options, xen.facts) if xen else (None, None)
        bundle = write_bundle(scenario, board, directory, images, options, facts)
    return FirmwareBundle.of(bundle)


@cache
def _firmware(build_dir: Path) -> Firmware:
    # Once per process: the on-disk cache makes a rebuild cheap, not free (hashing sources).
    return build_firmware(toolchain.locate(), build_dir)


_xen_builds: dict[tuple[Path, Path, tuple[str, ...]], XenBuild | HilError] = {}
_xen_lock = threading.Lock()


def _progress(board: str) -> Callable[[str], None]:
    def say(text: str) -> None:
        print(f"[{board}] {text}", file=sys.stderr, flush=True)

    return say


def xen_build(board: BoardConfig) -> XenBuild | None:
    """The Xen built from the board's ``xen_src`` (cached on disk by input hash, and per process
    with its failure: a board whose build failed does not rebuild for every scenario), or None.

    ConfigError when the source is not Xen or cannot enable a requested option (exit 2),
    InfraError naming the build log when the build fails (exit 3)."""
    if board.xen_src is None:
        return None
    build_dir = default_build_dir().resolve()
    key = (build_dir, board.xen_src, board.xen_kconfig)
    with _xen_lock:
        known = _xen_builds.get(key)
        if known is None:
            known = _xen_builds[key] = _build_xen(board, build_dir)
    if isinstance(known, HilError):
        raise known
    return known


def _build_xen(board: BoardConfig, build_dir: Path) -> XenBuild | HilError:
    where = f"{display_path(board.source)}: board '{board.name}': field 'xen_src'"
    try:
        source = XenSource.of(board.xen_src)  # type: ignore[arg-type]
        tc = toolchain.locate()
        return build_xen(tc, build_dir, source, board.xen_kconfig, _progress(board.name))
    except XenSourceError as exc:
        return ConfigError(f"{where}: {exc}")
    except (toolchain.ToolchainError, BuildError, OSError) as exc:
        return InfraError(f"board '{board.name}': Xen build failed: {exc}")


def board_xen(board: BoardConfig) -> XenImage | None:
    """The Xen a qemu-virt board boots: built from ``xen_src``, the lab's ``xen_image``, or
    None (the probe runs as BL33)."""
    build = xen_build(board)
    if build is not None:
        facts = build.provenance()
        return XenImage(build.image, board.xen_options(build.kconfig()), build.config, facts)
    if board.xen_image is None:
        return None
    image = board.xen_image.resolve()
    if not image.is_file():
        raise InfraError(f"board '{board.name}': xen_image {image} is not a file")
    stat = image.stat()
    prebuilt = _prebuilt(image, stat.st_mtime_ns, stat.st_size)
    built = prebuilt.kconfig()
    if built is None:  # no .config in the image: the lab's xen_kconfig is all there is to go by
        return XenImage(image, board.xen_options(), None, prebuilt.provenance())
    where = f"{display_path(board.source)}: board '{board.name}'"
    if built.get("CONFIG_FFA") != "y":
        raise ConfigError(
            f"{where}: field 'xen_image': {image} was built without CONFIG_FFA=y (its embedded "
            ".config): there is no FF-A mediator to check"
        )
    for i, line in enumerate(board.xen_kconfig):
        name, _, value = line.partition("=")
        if built.get(name, "n") != value:
            raise ConfigError(
                f"{where}: field 'xen_kconfig[{i}]': {line}, but {image} was built with "
                f"{name}={built.get(name, 'n')} (its embedded .config)"
            )
    config = _config_file(prebuilt)
    return XenImage(image, board.xen_options(built), config, prebuilt.provenance())


@cache
def _prebuilt(image: Path, mtime_ns: int, size: int) -> PrebuiltXen:
    # Once per process and version of the image (a run reads it for every scenario).
    return PrebuiltXen.inspect(image)


def _config_file(prebuilt: PrebuiltXen) -> Path:
    """The embedded .config as a file a bundle can carry (beside the builds, by image digest)."""
    out = default_build_dir().resolve() / f"xen-image-{prebuilt.sha256[:16]}" / "xen.config"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, (prebuilt.config or "").encode(), sync=False)
    return out


def prepare(board: BoardConfig) -> None:
    """Build what the board's bundles need before its first case, so a failure is one line.
    Xen first: a source that is not Xen is refused before anything else is built."""
    board_xen(board)
    try:
        _firmware(default_build_dir().resolve())
    except (toolchain.ToolchainError, BuildError) as exc:
        raise InfraError(f"board '{board.name}': firmware: {exc}") from exc


def board_bundle(scenario: Scenario, board: BoardConfig, directory: Path) -> Bundle:
    """The bundle of a qemu-virt board: the scenario's images (TF-A, test SPMC, the probe; with
    a Xen from the lab's ``xen_src`` or ``xen_image``, Xen as BL33 and the probe as its dom0)
    built for it."""
    xen = board_xen(board)
    try:
        # BL33 is replaced per bundle (fiptool update): Xen needs no TF-A build of its own.
        fw = _firmware(default_build_dir().resolve())
        return make_bundle(fw, scenario, directory, board.type.name, xen).bundle
    except (toolchain.ToolchainError, BuildError) as exc:
        raise InfraError(f"board '{board.name}': firmware: {exc}") from exc
