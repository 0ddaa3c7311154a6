"""A board in use by this process: its lock, the running instance the controller launches for
boards that are processes (the virtual board), its power and deploy back-ends and its console
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
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from hil.backend import BackendSpec
from hil.console import ConsoleGroup
from hil.deploy import Deployer
from hil.errors import InfraError
from hil.lab import VIRTUAL_LAUNCH_OPTIONS, BoardConfig, is_virtual_launch
from hil.lock import BoardLock
from hil.power import LaunchedBoard, PowerBackend

if TYPE_CHECKING:
    from hil.labgrid import PlaceLease


def launches_virtual_board(board: BoardConfig) -> bool:
    """A virtual board with no control address given: hil runs it, like an FVP it launches."""
    return is_virtual_launch(board.power)


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

    def __enter__(self) -> BoardSession:
        try:
            self._stack.enter_context(BoardLock(self.board.name, self.lock_wait_s))
            if self.board.place is not None:
                self._lease_place()
            elif launches_virtual_board(self.board):
                self._launch_virtual()
            else:
                self._bind_configured_power()
                self._deployer = self.board.make_deployer()
                power = self._power
                # A board hil launches says where its consoles are; others are configured.
                launched = isinstance(power, LaunchedBoard)
                self.consoles = dict(power.console_urls() if launched else self.board.consoles)
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

    def _launch_virtual(self) -> None:
        # Imported here: only labs with virtual boards need the simulator.
        from hil.sim.backend import VirtualDeployer, VirtualPower
        from hil.sim.launcher import VirtualBoardProcess

        spec: BackendSpec = self.board.power
        spec.only(*VIRTUAL_LAUNCH_OPTIONS)
        delay = spec.get("stage_delay", float, -1.0)
        process = VirtualBoardProcess.start(
            self.board.name,
            spec.get("xen", str, self.board.xen_profile),
            workdir=self.workdir,
            stage_delay=delay if delay >= 0 else None,
            faults=dict(spec.get("faults", dict, {})),
            # The board's options (what its bundles record for the oracle), unless the lab
            # rehearses a Xen booted differently.
            xen_options={
                **asdict(self.board.xen_options()),
                **spec.get("xen_options", dict, {}),
            },
            console_timestamps=spec.get("console_timestamps", bool, False),
            connect_settle=0.0,  # hil.console keeps what arrives while it connects
        )
        self._stack.callback(process.stop)
        self._power = VirtualPower(process.control)
        self._deployer = VirtualDeployer(process.control)
        self.consoles = {name: process.console_url_for(name) for name in process.consoles}
