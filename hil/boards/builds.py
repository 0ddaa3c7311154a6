"""What the firmware bundles of a lab board are built from: the Xen its config names (``xen_src``
built by hil, or a prebuilt ``xen_image``) and the test firmware built once per process. Shared
by the platforms whose bundles carry images (qemu.py, fvp.py, juno.py)."""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

from hil.atomic import atomic_write
from hil.config import display_path
from hil.errors import ConfigError, HilError, InfraError
from hil.firmware import toolchain
from hil.firmware.build import BuildError, Firmware, build_firmware, default_build_dir, run_logged
from hil.firmware.bundle import FIP, MANIFEST_DTB, MANIFEST_DTS, PROBE_IMAGE, SPMC_IMAGE, XenImage
from hil.firmware.manifest import manifest_dts
from hil.firmware.xen import PrebuiltXen, XenBuild, XenSource, XenSourceError, build_xen
from hil.guest import LINUX
from hil.guest.linux import GuestKernel, LinuxSourceError, default_busybox, prepare_guest
from hil.lab import BoardConfig
from hil.scenario import Scenario
from hil.xen.oracle import XenOptions


@cache
def _firmware(build_dir: Path) -> Firmware:
    # Once per process: the on-disk cache makes a rebuild cheap, not free (hashing sources).
    return build_firmware(toolchain.locate(), build_dir)


def qemu_firmware(board: BoardConfig) -> Firmware:
    """The QEMU test firmware (SPMC, probe, TF-A PLAT=qemu), InfraError naming the board."""
    try:
        return _firmware(default_build_dir().resolve())
    except (toolchain.ToolchainError, BuildError) as exc:
        raise InfraError(f"board '{board.name}': firmware: {exc}") from exc


@cache
def _guest(build_dir: Path, kernel_dir: Path | None) -> GuestKernel:
    # Once per process, like the firmware: preparing hashes the kernel, modules and busybox.
    return prepare_guest(build_dir, kernel_dir)


def board_guest(board: BoardConfig) -> GuestKernel | None:
    """The Linux guest of a board with ``guest = "linux"`` (prepared once, cached), else None.
    A bad ``dom0_kernel`` is the lab's to fix (ConfigError); Debian's kernel missing is this
    machine's set-up (InfraError naming scripts/setup-system.sh)."""
    if board.guest != LINUX:
        return None
    try:
        return _guest(default_build_dir().resolve(), board.dom0_kernel)
    except LinuxSourceError as exc:
        # busybox comes from setup-system.sh whichever kernel the lab names.
        lab_kernel = board.dom0_kernel is not None and default_busybox().is_file()
        error = ConfigError if lab_kernel else InfraError
        raise error(f"board '{board.name}': dom0 kernel: {exc}") from None


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
    """The Xen a board boots: built from ``xen_src``, the lab's ``xen_image``, or None (the
    probe runs without a hypervisor)."""
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
    return XenImage(image, board.xen_options(built), _config_file(prebuilt), prebuilt.provenance())


def board_xen_options(board: BoardConfig) -> XenOptions:
    """The options ``board`` boots Xen with: what its bundles record and so what the oracle
    must assume for it (its built or prebuilt Xen's .config, else the lab's lines)."""
    xen = board_xen(board)
    return xen.options if xen is not None else board.xen_options()


@cache
def _prebuilt(image: Path, mtime_ns: int, size: int) -> PrebuiltXen:
    # Once per process and version of the image (a run reads it for every scenario).
    return PrebuiltXen.inspect(image)


def _config_file(prebuilt: PrebuiltXen) -> Path:
    """The embedded .config as a file a bundle can carry (beside the builds, by image digest)."""
    out = default_build_dir().resolve() / f"xen-image-{prebuilt.sha256[:16]}" / "xen.config"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, prebuilt.config_bytes or b"", sync=False)
    return out


def scenario_images(
    fw: Firmware, scenario: Scenario, out: Path, *fip_updates: str | Path
) -> dict[str, Path]:
    """The scenario's images in ``out`` (roles as in hil.firmware.bundle): the SPMC with the
    scenario's blob, the probe with its plan, the SPMC manifest for the platform's BL32 base
    (DTS and DTB), and the FIP repacked with them plus ``fip_updates`` (more ``fiptool update``
    options, e.g. ``--hw-config``, path)."""
    tc, log = fw.toolchain, out / "images.log"
    spmc_blob, plan = scenario.spmc_config().encode(), scenario.probe_plan().encode()
    spmc = fw.spmc.patched(spmc_blob, out / "spmc.bin")
    probe = fw.probe.patched(plan, out / "probe.bin")
    dts = out / "spmc_manifest.dts"
    version = int.from_bytes(spmc_blob[8:12], "little")
    dts.write_text(manifest_dts(version, fw.platform.spmc_base))
    dtb = out / "spmc_manifest.dtb"
    run_logged([tc.dtc, "-I", "dts", "-O", "dtb", "-o", dtb, dts], log, "dtc")
    fip = out / "fip.bin"
    shutil.copyfile(fw.tfa.fip, fip)
    update = [fw.tfa.fiptool, "update", "--tos-fw", spmc, "--tos-fw-config", dtb, *fip_updates]
    run_logged([*update, fip], log, "fiptool")
    return {
        FIP: fip,
        SPMC_IMAGE: spmc,
        PROBE_IMAGE: probe,
        MANIFEST_DTS: dts,
        MANIFEST_DTB: dtb,
    }
