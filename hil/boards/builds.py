"""What the firmware bundles of a lab board are built from: the Xen its config names (``xen_src``
built by hil, or a prebuilt ``xen_image``) and the test firmware built once per process. Shared
by the platforms whose bundles carry images (qemu.py, fvp.py, juno.py)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path

from hil.config import display_path
from hil.errors import ConfigError, HilError, InfraError
from hil.firmware import toolchain
from hil.firmware.build import BuildError, Firmware, build_firmware, default_build_dir
from hil.firmware.bundle import XenImage
from hil.firmware.xen import XenBuild, XenSource, XenSourceError, build_xen
from hil.lab import BoardConfig


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
    return XenImage(image, board.xen_options())
