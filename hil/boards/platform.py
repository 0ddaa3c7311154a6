"""A lab board's platform: what launches it (if hil does) and what builds its bundles. The
platform modules are imported only when a board of theirs is used."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from hil.boards import IMAGES, LAUNCHED, LaunchedBoard, launched_kind
from hil.bundle import Bundle, write_bundle
from hil.errors import InfraError
from hil.lab import BoardConfig
from hil.scenario import Scenario


def _module(board: BoardConfig, name: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise InfraError(f"board '{board.name}': {what} is not available: {exc}") from exc


def launches(board: BoardConfig) -> str | None:
    """The label of what hil launches for ``board`` ("QEMU", ...), or None."""
    kind = launched_kind(board.power.kind, board.power.data)
    return LAUNCHED[kind][1] if kind is not None and board.place is None else None


def launcher(board: BoardConfig, workdir: Path) -> LaunchedBoard | None:
    """The (not yet opened) launched board for ``board``, or None when hil does not launch it.
    ``workdir`` is the session's scratch directory (process logs, port files)."""
    kind = launched_kind(board.power.kind, board.power.data)
    if kind is None or board.place is not None:
        return None
    module, label = LAUNCHED[kind]
    launched: LaunchedBoard = _module(board, module, label).launcher(board, workdir)
    return launched


def prepare_board(board: BoardConfig) -> None:
    """Build what ``board``'s bundles need (e.g. its Xen) before a run: a failed build is then
    one line with its exit code (2 bad source, 3 build failure), not an infra error per case.
    (What launches the board was checked when the lab loaded: lab._check_launcher.)"""
    module = IMAGES.get(board.type.name)
    if module is not None:
        _module(board, module, f"firmware for {board.type.name}").prepare(board)


def bundle_for_board(scenario: Scenario, board: BoardConfig, directory: Path) -> Bundle:
    """The bundle ``board`` boots ``scenario`` from: the blobs, plus images where hil builds
    them for the board's type."""
    module = IMAGES.get(board.type.name)
    if module is None:
        return write_bundle(scenario, board.type.name, directory, xen_options=board.xen_options())
    images = _module(board, module, f"firmware for {board.type.name}")
    bundle: Bundle = images.bundle(scenario, board, directory)
    return bundle
