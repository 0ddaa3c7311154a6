"""Locate the host tools and TF-A source the firmware build needs.

Everything here is installed by ``scripts/setup-system.sh``; a missing piece raises
:class:`ToolchainError` with one line that says so.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

CROSS_COMPILE = "aarch64-linux-gnu-"
TFA_DIR_NAME = "tf-a-2.12.1"
SETUP_HINT = "run scripts/setup-system.sh"


class ToolchainError(RuntimeError):
    """A required host tool or source tree is missing."""


@dataclass(frozen=True)
class Toolchain:
    """Absolute paths of the tools used to build and boot the QEMU tier."""

    gcc: Path
    objcopy: Path
    nm: Path
    dtc: Path
    make: Path
    qemu: Path
    tfa_src: Path

    @property
    def cross_compile(self) -> str:
        """The CROSS_COMPILE prefix (with directory) matching :attr:`gcc`."""
        return str(self.gcc)[: -len("gcc")]


def default_tfa_src() -> Path:
    """Where setup-system.sh extracts TF-A: ``$HIL_CACHE/tf-a-2.12.1`` or ~/.cache/hil/src/."""
    cache = os.environ.get("HIL_CACHE")
    base = Path(cache) if cache else Path.home() / ".cache" / "hil" / "src"
    return base / TFA_DIR_NAME


def _which(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None


def _tool_names() -> dict[str, str]:
    return {
        "gcc": f"{CROSS_COMPILE}gcc",
        "objcopy": f"{CROSS_COMPILE}objcopy",
        "nm": f"{CROSS_COMPILE}nm",
        "dtc": "dtc",
        "make": "make",
        "qemu": "qemu-system-aarch64",
    }


def missing(tfa_src: Path | None = None) -> list[str]:
    """Names of the tools (and the TF-A source dir) that are not available."""
    gone = [name for name in _tool_names().values() if _which(name) is None]
    src = tfa_src or default_tfa_src()
    if not (src / "Makefile").is_file():
        gone.append(f"TF-A source ({src})")
    return gone


def _require(name: str) -> Path:
    found = _which(name)
    if found is None:
        raise ToolchainError(f"missing {name}: {SETUP_HINT}")
    return found


def locate(tfa_src: Path | None = None) -> Toolchain:
    """Find every tool on PATH and the TF-A source, or raise :class:`ToolchainError`."""
    gone = missing(tfa_src)
    if gone:
        raise ToolchainError(f"missing {', '.join(gone)}: {SETUP_HINT}")
    names = _tool_names()
    return Toolchain(
        gcc=_require(names["gcc"]),
        objcopy=_require(names["objcopy"]),
        nm=_require(names["nm"]),
        dtc=_require(names["dtc"]),
        make=_require(names["make"]),
        qemu=_require(names["qemu"]),
        tfa_src=tfa_src or default_tfa_src(),
    )
