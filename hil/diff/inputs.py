"""A review's ``--base`` / ``--head``: a Xen source tree, a ``.tar.xz``/``.tar.gz`` of one, a built
image (the forms a board's ``xen_src``/``xen_image`` take), a recording (``recorded:DIR``, base
only), or the base plus patch files. Each becomes a variant of the lab's board that boots that
Xen, so both sides are built the same way, from the same cache, with the same firmware."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from hil.bundle import sha256_file
from hil.diff.patches import Patch
from hil.diff.recording import RECORDED, Recording, load_recording
from hil.errors import UsageError
from hil.firmware.xen import XenSource, XenSourceError, is_archive
from hil.lab import BoardConfig
from hil.xen.oracle import PROFILES


class Kind(StrEnum):
    ARCHIVE = "archive"
    TREE = "tree"
    IMAGE = "image"
    RECORDED = "recorded"
    PATCHED = "patched"  # the base source plus --head-patch files


@dataclass(frozen=True)
class XenInput:
    """One side as given: what it is and where."""

    option: str  # "--base" / "--head", for messages
    given: str  # as typed
    kind: Kind
    path: Path
    patches: tuple[Patch, ...] = ()

    @property
    def buildable(self) -> bool:
        return self.kind in (Kind.ARCHIVE, Kind.TREE, Kind.PATCHED)

    def recording(self) -> Recording:
        return load_recording(self.path)

    def board(self, board: BoardConfig, name: str) -> BoardConfig:
        """``board`` booting this Xen, named ``name`` (its results directory), judged against
        its own profile (see :func:`side_profile`), never a recording."""
        if self.kind is Kind.IMAGE:
            xen: dict[str, Any] = {"xen_image": self.path.resolve(), "xen_src": None}
        else:
            xen = {"xen_src": self.path.resolve(), "xen_image": None}
        # Back-ends name their board in messages and key their work directories by it: each
        # side gets its own, or the two sides (run in parallel) would share one QEMU workdir.
        backends = {
            key: replace(spec, board=name, where=f"board '{name}'")
            for key, spec in (("power", board.power), ("deploy", board.deploy))
        }
        if isinstance(workdir := board.power.data.get("workdir"), str):
            data = {**board.power.data, "workdir": str(Path(workdir) / name)}
            backends["power"] = replace(backends["power"], data=data)
        return replace(board, name=name, default=False, recording=None, **xen, **backends)

    def provenance(self) -> dict[str, Any]:
        """What names this side in diff.json before anything is built."""
        out: dict[str, Any] = {"input": self.given, "kind": self.kind.value}
        if self.patches:
            out["patches"] = [
                {
                    "file": str(p.file),
                    "patch": p.number,
                    "subject": p.subject,
                    "sha256": sha256_file(p.file),
                }
                for p in self.patches
            ]
        return out


def parse_input(option: str, given: str) -> XenInput:
    """``given`` as a side (UsageError naming the option when it is none of the forms)."""
    if given.startswith(RECORDED):
        directory = Path(given.removeprefix(RECORDED))
        load_recording(directory)  # a missing or broken recording fails now, naming its file
        return XenInput(option, given, Kind.RECORDED, directory)
    path = Path(given)
    if is_archive(path) or path.is_dir():
        try:
            XenSource.of(path)
        except XenSourceError as exc:
            raise UsageError(f"{option}: {exc}") from None
        return XenInput(option, given, Kind.ARCHIVE if is_archive(path) else Kind.TREE, path)
    if path.is_file():
        return XenInput(option, given, Kind.IMAGE, path)
    raise UsageError(
        f"{option}: {given}: no such file or directory (a Xen tree, a .tar.xz/.tar.gz of one, "
        f"a built xen image, or {RECORDED}DIR)"
    )


def patched(base: XenInput, root: Path, patches: Sequence[Patch]) -> XenInput:
    """The head made of ``base`` extracted to ``root`` with ``patches`` applied."""
    names = " + ".join(dict.fromkeys(str(p.file) for p in patches))
    return XenInput("--head-patch", f"{base.given} + {names}", Kind.PATCHED, root, tuple(patches))


_RELEASE = re.compile(r"(\d+)\.(\d+)")


def side_profile(version: str | None, fallback: str) -> str:
    """The profile a side's Xen claims: its release's (``4.21.2`` -> ``xen-4.21``) when hil has
    one, else ``fallback`` (the board's: a prebuilt image, a release without a profile)."""
    found = _RELEASE.match(version or "")
    if found:
        name = f"xen-{found[1]}.{found[2]}"
        if name in PROFILES:
            return name
    return fallback
