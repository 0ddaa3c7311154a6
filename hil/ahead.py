"""A board's next bundle, made while its current case boots. On a QEMU board a bundle (patched
images, dtc, fiptool, the BIOS image) took most of what the controller spent on a case before
the emulator started; made one case ahead it costs the case nothing but the wait for a build
that has not finished.

Each case still boots exactly the bundle it would have made itself, in the same directory, and a
bundle that could not be made fails its own case with the same message (the exception is kept
and raised when that case takes it), never the case in flight."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from hil.boards.platform import bundle_for_board
from hil.bundle import Bundle
from hil.case import bundle_dir
from hil.lab import BoardConfig
from hil.scenario import Scenario


class BundlesAhead:
    """``with BundlesAhead(board, run_dir) as ahead:`` then, per case, ``ahead.take(scenario)``
    (what run_case boots) and ``ahead.prepare(next_scenario)``. One bundle is made at a time, in
    one thread of its own. On exit (the run ends, is interrupted, or the board goes offline) the
    bundle being made is finished and those no case took are deleted: a stopped run leaves only
    what its cases ran on."""

    def __init__(self, board: BoardConfig, run_dir: Path) -> None:
        self.board, self.run_dir = board, run_dir
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"bundle-{board.name}")
        self._made: dict[str, Future[Bundle]] = {}

    def prepare(self, scenario: Scenario) -> None:
        """Start making ``scenario``'s bundle, unless it is already on its way."""
        if scenario.name not in self._made:
            directory = bundle_dir(self.run_dir, self.board.name, scenario.name)
            self._made[scenario.name] = self._pool.submit(
                bundle_for_board, scenario, self.board, directory
            )

    def take(self, scenario: Scenario) -> Callable[[], Bundle]:
        """``scenario``'s bundle, as a call that waits for it (and raises what making it raised)."""
        self.prepare(scenario)
        return self._made.pop(scenario.name).result

    def close(self) -> None:
        for future in self._made.values():
            future.cancel()
        self._pool.shutdown(wait=True)  # a bundle half made would be left half written
        for name in self._made:
            directory = bundle_dir(self.run_dir, self.board.name, name)
            shutil.rmtree(directory, ignore_errors=True)
            with contextlib.suppress(OSError):  # the case's directory, when nothing else is in it
                directory.parent.rmdir()
        self._made.clear()

    def __enter__(self) -> BundlesAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
