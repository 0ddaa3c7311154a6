"""Board platforms, one module each; the set is this package's layout:

- ``virtual.py``  the virtual board (``python -m hil.sim``): launched by hil, or attached to one
  that runs elsewhere (``control`` / ``port_file``)
- ``qemu.py``     QEMU virt: launched by hil on the bundle's TF-A + test SPMC (+ Xen) images
- ``fvp.py``      Arm FVP Base RevC: launched by hil on the bundle's images, consoles from the
  model's own port announcements
- ``juno.py``     Juno r2: bundles for its NOR flash, deployed through the MCC

``platform.py`` picks, for a board of the lab, what launches it and what builds its bundles.

A board hil launches is the process: the :class:`LaunchedBoard` protocol below is the one way
every launched platform is driven (the board session opens it, case and console commands deploy
and power it). This module imports no runtime code, so the lab loader can name the kinds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

# ``power = {backend = K}`` launches the board with module LAUNCHED[K]; its ``launcher(board,
# workdir)`` builds the LaunchedBoard. The labels are what ``hil boards`` shows.
LAUNCHED: Mapping[str, tuple[str, str]] = {
    "virtual": ("hil.boards.virtual", "virtual board"),
    "qemu": ("hil.boards.qemu", "QEMU"),
    "fvp": ("hil.boards.fvp", "FVP"),
}
# Options of a virtual board's table that name a board running elsewhere (attach, not launch).
VIRTUAL_ATTACH_OPTIONS = frozenset({"control", "port_file"})

# Board types whose bundles carry firmware images hil builds, by module: its ``prepare(board)``
# and ``bundle(scenario, board, directory)``.
IMAGES: Mapping[str, str] = {
    "qemu-virt": "hil.boards.qemu",
    "fvp-base-revc": "hil.boards.fvp",
    "juno-r2": "hil.boards.juno",
}


def launched_kind(kind: str, options: Mapping[str, object]) -> str | None:
    """The LAUNCHED key of a board whose power table is ``kind`` with ``options``, or None when
    the board is not launched by hil (a virtual board given by its control address is attached)."""
    if kind not in LAUNCHED:
        return None
    if kind == "virtual" and VIRTUAL_ATTACH_OPTIONS & set(options):
        return None
    return kind


class LaunchedBoard(Protocol):
    """A board that is a process hil starts: power, deploy and consoles in one object.

    Life cycle, in the order a session uses it: ``open()`` takes what lasts the session (the
    virtual board's process, the console ports); ``console_urls()`` is then valid and stays the
    same until ``close()``, across power-cycles; ``deploy(bundle)`` records the (verified) bundle
    the next ``power_on()`` starts the process from; ``power_off()`` stops it; ``close()``
    releases everything, idempotently. Failures are InfraError naming the board."""

    name: str
    # True when the consoles listen only while the process runs (QEMU): they are opened with
    # ``connect_now=False`` and connect once it is up. False: they listen from ``open()`` on.
    consoles_need_power: bool
    # How long a byte the board sent may take to reach the host after a later byte on another of
    # its consoles did (a relay's or adapter's buffering): what a boot waits before it is judged.
    console_latency_s: float

    def open(self) -> None: ...
    def console_urls(self) -> Mapping[str, str]: ...
    def deploy(self, bundle: Path) -> None: ...
    def power_on(self) -> None: ...
    def power_off(self) -> None: ...
    def reset(self) -> None: ...  # a fresh start of the process on the deployed bundle
    # The case in flight is done with the board, its consoles closed: a board that exists only
    # while powered may start stopping now (its next power_off/power_on waits for that).
    def case_done(self) -> None: ...
    def close(self) -> None: ...
    def process_log(self) -> Path | None: ...  # the process's own output (not its consoles)
    def failure(self) -> str | None: ...  # why the process ended on its own, None while it runs
    # Call ``died`` (from any thread) when the process ends on its own while powered, where its
    # consoles would not show it (they outlive the process): the session ends the case's waits.
    def watch(self, died: Callable[[], None]) -> None: ...
