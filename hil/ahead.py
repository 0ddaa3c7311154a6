"""A board's next bundle, made while its current case boots. On a QEMU board a bundle (patched
images, dtc, fiptool, the BIOS image) took most of what the controller spent on a case before
the emulator started; made one case ahead it costs the case nothing but the wait for a build
that has not finished.

Each case still boots exactly the bundle it would have made itself, in the same directory, and a
bundle that could not be made fails its own case with the same message (the exception is kept
and raised when that case takes it), never the case in flight.

With the bundle, the case's console capture is prepared (its files created, its reader threads
started, ConsoleGroup.prepare): they connect only when the case opens them, after its board's
power-off, so they read nothing of the case before. Opening them cost 1-8 ms before the emulator
started; a capture no case opened is discarded with its empty files."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from hil.boards.platform import bundle_for_board
from hil.bundle import TICK_NS, Bundle
from hil.case import bundle_dir
from hil.console import ConsoleGroup
from hil.lab import BoardConfig
from hil.scenario import Scenario

# A case's console capture (not open) for its directory: hil.case.case_consoles on a session.
CaptureFor = Callable[[Path], ConsoleGroup]


class BundlesAhead:
    """``with BundlesAhead(board, run_dir) as ahead:`` then, per case, ``ahead.take(scenario)``
    (what run_case boots) and ``ahead.prepare(next_scenario)``. One bundle is made at a time, in
    one thread of its own. On exit (the run ends, is interrupted, or the board goes offline) the
    bundle being made is finished and those no case took are deleted: a stopped run leaves only
    what its cases ran on."""

    def __init__(
        self, board: BoardConfig, run_dir: Path, capture: CaptureFor | None = None
    ) -> None:
        """``capture``: also prepare each case's console capture (ConsoleGroup.prepare: its
        files and reader threads, connecting only when the case opens it) once its bundle is
        made, so that the case does not pay for them before its board starts."""
        self.board, self.run_dir, self.capture = board, run_dir, capture
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"bundle-{board.name}")
        self._made: dict[str, Future[Bundle]] = {}
        self._checks: list[Future[None]] = []
        self._captures: dict[str, Future[ConsoleGroup | None]] = {}

    def prepare(self, scenario: Scenario) -> None:
        """Start making ``scenario``'s bundle, unless it is already on its way; then read it
        through once, so that its deploy finds it verified (hil.bundle.TICK_NS)."""
        if scenario.name in self._made:
            return
        directory = bundle_dir(self.run_dir, self.board.name, scenario.name)
        made = self._pool.submit(bundle_for_board, scenario, self.board, directory)
        self._made[scenario.name] = made
        if self.capture is not None:  # before the check, which reads the whole bundle
            case_dir = directory.parent
            self._captures[scenario.name] = self._pool.submit(_prepared, self.capture, case_dir)
        self._checks.append(self._pool.submit(_verify_soon, made))

    def take(self, scenario: Scenario) -> Callable[[], Bundle]:
        """``scenario``'s bundle, as a call that waits for it (and raises what making it raised)."""
        self.prepare(scenario)
        return self._made.pop(scenario.name).result

    def take_capture(self, scenario: Scenario) -> Callable[[], ConsoleGroup | None] | None:
        """``scenario``'s console capture prepared ahead, as a call that gives it, or None when
        it could not be prepared or its preparation has not begun yet (the case then makes its
        own rather than wait behind other work); None when none is on its way. The caller owns
        what it gets: it opens it, or discards it (ConsoleGroup.discard)."""
        future = self._captures.pop(scenario.name, None)
        if future is None:
            return None

        def prepared() -> ConsoleGroup | None:
            return None if future.cancel() else future.result()

        return prepared

    def close(self) -> None:
        for future in (*self._made.values(), *self._checks, *self._captures.values()):
            future.cancel()
        self._pool.shutdown(wait=True)  # a bundle half made would be left half written
        for future in self._captures.values():
            if not future.cancelled() and (group := future.result()) is not None:
                group.discard()
        self._captures.clear()
        for name in self._made:
            directory = bundle_dir(self.run_dir, self.board.name, name)
            shutil.rmtree(directory, ignore_errors=True)
            with contextlib.suppress(OSError):  # the case's directory, when nothing else is in it
                directory.parent.rmdir()
        self._made.clear()
        self._checks.clear()

    def __enter__(self) -> BundlesAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _prepared(capture: CaptureFor, case_dir: Path) -> ConsoleGroup | None:
    """A case's console capture, prepared; None when it could not be (its case opens one of
    its own then, and says what is wrong)."""
    try:
        return capture(case_dir).prepare()
    except Exception:
        return None


def _verify_soon(made: Future[Bundle]) -> None:
    """Verify a bundle once its files are older than a clock tick: deploy verifies it again, and
    only then says what is wrong with it, as it did when nothing was made ahead."""
    try:
        bundle = made.result()
        time.sleep(TICK_NS / 1e9)
        bundle.verify()
    except Exception:  # whatever it is, its case reports it (made.result(), deploy)
        return
