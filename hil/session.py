"""A board in use by this process: its lock, the board hil launches when it is a process
(virtual, QEMU, FVP: hil.boards), its power and deploy back-ends and its console
URLs. Like a labgrid strategy's bound resources: the rest of hil asks the session, never the
config, how to reach a board.

A board with a labgrid ``place`` is leased for the whole session, after the local lock (which
guards against another hil process on this host; the place guards across hosts). Its consoles are
the place's serial resources, mapped by the board's ``console_resources``; its power is the
place's power resource when it has one, else the board's configured back-end; deploy is always the
board's back-end (labgrid has no resource hil could deploy through generically)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from hil.boards import LaunchedBoard
from hil.boards.platform import launcher
from hil.boot import SETTLE_S
from hil.console import ConsoleGroup
from hil.deploy import Deployer
from hil.errors import InfraError
from hil.lab import BoardConfig
from hil.lock import BoardLock
from hil.power import PowerBackend

if TYPE_CHECKING:
    from hil.labgrid import PlaceLease


class BoardSession:
    """``with BoardSession(board, workdir) as s:`` then ``s.consoles``, ``s.power``,
    ``s.deployer``. Everything is released on exit, also on exceptions and Ctrl-C."""

    def __init__(self, board: BoardConfig, workdir: Path, lock_wait_s: float = 0.0) -> None:
        """``lock_wait_s`` bounds the wait for the local lock and, separately, for the place."""
        self.board = board
        self.workdir = workdir
        self.lock_wait_s = lock_wait_s
        self.consoles: Mapping[str, str] = {}
        self._stack = ExitStack()
        self._power: PowerBackend | None = None
        self._deployer: Deployer | None = None
        self._lease: PlaceLease | None = None
        # The board hil launched for this session (hil.boards), or None.
        self.launched: LaunchedBoard | None = None
        self._capture: ConsoleGroup | None = None
        self._guard = threading.Lock()
        self.interrupted = False

    @property
    def power(self) -> PowerBackend:
        assert self._power is not None, "session not entered"
        return self._power

    @property
    def deployer(self) -> Deployer:
        assert self._deployer is not None, "session not entered"
        return self._deployer

    @property
    def console_latency_s(self) -> float:
        """How long the board's bytes may be on their way to the host (hil.boot.SETTLE_S but
        for a launched board that says otherwise)."""
        return SETTLE_S if self.launched is None else self.launched.console_latency_s

    @contextmanager
    def capturing(self, consoles: ConsoleGroup) -> Iterator[ConsoleGroup]:
        """Register the open console capture of the case in flight, so ``interrupt`` can end
        its waits (a case interrupted before it got here ends with InfraError)."""
        with self._guard:
            if self.interrupted:
                raise InfraError(f"board '{self.board.name}': run interrupted")
            self._capture = consoles
        try:
            yield consoles
        finally:
            with self._guard:
                self._capture = None

    def interrupt(self) -> None:
        """From another thread (Ctrl-C): close the capture in flight, so every console wait of
        the current case ends now instead of at its stage timeout. The session is still released
        by its owner's ``with``."""
        with self._guard:
            self.interrupted = True
            if self._capture is not None:
                self._capture.close()

    def _launched_died(self) -> None:
        """The launched process ended on its own: end the case's waits now (the boot attempt
        fails and the case says why, LaunchedBoard.failure), not at the stage's timeout."""
        with self._guard:
            if self._capture is not None:
                self._capture.close()

    def __enter__(self) -> BoardSession:
        try:
            self._stack.enter_context(BoardLock(self.board.name, self.lock_wait_s))
            launched = launcher(self.board, self.workdir)
            if self.board.place is not None:
                self._lease_place()
            elif launched is not None:
                self._launch(launched)
            else:
                self._bind_configured_power()
                self._deployer = self.board.make_deployer()
                self.consoles = dict(self.board.consoles)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()

    def refresh_consoles(self) -> Mapping[str, str]:
        """The console URLs to re-open a lost console with. A labgrid place is resolved again
        first: an exporter restart moves its ser2net port, or leaves it unset until the place is
        re-acquired (PlaceLease.refresh does both)."""
        if self._lease is not None:
            self._lease.refresh()
            self._resolve_place_consoles()
        return self.consoles

    def _bind_configured_power(self) -> None:
        self._power = self.board.make_power()
        self._stack.callback(self._power.close)

    def _lease_place(self) -> None:
        # Imported here: only distributed labs need labgrid.
        from hil.labgrid import LabgridClient, PlaceLease

        assert self.board.place is not None and self.board.coordinator is not None
        client = LabgridClient(self.board.name, self.board.place, self.board.coordinator)
        wait = self.lock_wait_s
        self._lease = self._stack.enter_context(PlaceLease(client, wait=wait > 0, max_wait=wait))
        if self._lease.power is not None:
            self._power = self._lease.power
        else:
            self._bind_configured_power()
        self._deployer = self.board.make_deployer()
        self._resolve_place_consoles()

    def _resolve_place_consoles(self) -> None:
        assert self._lease is not None
        lease = self._lease
        self.consoles = {
            name: lease.console_url(resource)
            for name, resource in self.board.console_resources.items()
        }

    def _launch(self, launched: LaunchedBoard) -> None:
        # A board hil launches is its own power and deployer, and says where its consoles are.
        self._stack.callback(launched.close)
        launched.watch(self._launched_died)
        launched.open()
        self.launched = launched
        self._power = self._deployer = launched
        self.consoles = dict(launched.console_urls())
