"""The virtual board (``python -m hil.sim``), in one of two ways:

- launched by hil (``power = {backend = "virtual"}``, the default of boards/virtual.toml):
  :class:`VirtualBoard` starts the board process when the session opens and stops it when it
  closes; options ``stage_delay``, ``faults``, ``console_timestamps``, ``xen_options`` and ``xen``
  (the profile the board models when it must differ from the lab's: how a lab rehearses "Xen was
  upgraded but lab.toml was not");
- attached to a board that runs elsewhere, named by ``control = "HOST:PORT"`` or ``port_file``
  (the JSON file ``python -m hil.sim`` writes); ``timeout`` (seconds) bounds each request.
  hil.power / hil.deploy build :class:`VirtualPower` / :class:`VirtualDeployer` for it.

Errors are InfraError naming the board."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hil.backend import BackendSpec
from hil.boot import SETTLE_S
from hil.errors import InfraError
from hil.lab import BoardConfig
from hil.sim.client import SimControl
from hil.sim.launcher import VirtualBoardProcess

ATTACH_OPTIONS = ("control", "port_file", "timeout")
LAUNCH_OPTIONS = ("stage_delay", "faults", "console_timestamps", "xen_options", "xen")


class VirtualPower:
    def __init__(self, control: SimControl) -> None:
        self.control = control

    def power_on(self) -> None:
        self.control.power(True)

    def power_off(self) -> None:
        self.control.power(False)

    def reset(self) -> None:
        self.control.reset()

    def close(self) -> None:
        """Nothing to release: every request uses its own connection."""


class VirtualDeployer:
    def __init__(self, control: SimControl) -> None:
        self.control = control

    def deploy(self, bundle: Path) -> None:
        self.control.deploy(bundle)


class VirtualBoard:
    """A :class:`hil.boards.LaunchedBoard`: the board process lives from ``open`` to ``close``
    (its consoles listen all that time), power and deploy go over its control channel."""

    consoles_need_power = False
    # It stands in for a lab board behind serial adapters: judged as one (hil.boot.SETTLE_S).
    console_latency_s = SETTLE_S

    def __init__(
        self,
        name: str,
        workdir: Path,
        profile: str,
        xen_options: Mapping[str, Any],
        stage_delay: float | None = None,
        faults: Mapping[str, Any] | None = None,
        console_timestamps: bool = False,
    ) -> None:
        self.name, self.workdir, self.profile = name, workdir, profile
        self.xen_options, self.stage_delay = dict(xen_options), stage_delay
        self.faults, self.console_timestamps = dict(faults or {}), console_timestamps
        self._process: VirtualBoardProcess | None = None

    def open(self) -> None:
        if self._process is not None:
            return
        self._process = VirtualBoardProcess.start(
            self.name,
            self.profile,
            workdir=self.workdir,
            stage_delay=self.stage_delay,
            faults=self.faults,
            xen_options=self.xen_options,
            console_timestamps=self.console_timestamps,
            connect_settle=0.0,  # hil.console keeps what arrives while it connects
        )

    def _running(self) -> VirtualBoardProcess:
        if self._process is None:
            raise InfraError(f"board '{self.name}': virtual board not started")
        return self._process

    def console_urls(self) -> dict[str, str]:
        process = self._running()
        return {name: process.console_url_for(name) for name in process.consoles}

    def deploy(self, bundle: Path) -> None:
        self._running().control.deploy(bundle)

    def power_on(self) -> None:
        self._running().control.power(True)

    def power_off(self) -> None:
        self._running().control.power(False)

    def reset(self) -> None:
        self._running().control.reset()

    def case_done(self) -> None:
        """Stays as it is: its consoles are the session's, not a power-on's."""

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.stop()

    def process_log(self) -> Path | None:
        return self.workdir / f"{self.name}.board.log"

    def watch(self, died: Callable[[], None]) -> None:
        """Not needed: the consoles are the process's own sockets and close with it."""

    def failure(self) -> str | None:
        process = self._process
        if process is None or process.process.poll() is None:
            return None
        return f"virtual board process exited with {process.process.returncode}"


def launcher(board: BoardConfig, workdir: Path) -> VirtualBoard:
    spec = board.power
    spec.only("backend", *LAUNCH_OPTIONS)
    delay = spec.get("stage_delay", float, -1.0)
    return VirtualBoard(
        board.name,
        workdir,
        spec.get("xen", str, board.xen_profile),
        # The board's options (what its bundles record for the oracle), unless the lab
        # rehearses a Xen booted differently.
        {**asdict(board.xen_options()), **spec.get("xen_options", dict, {})},
        stage_delay=delay if delay >= 0 else None,
        faults=spec.get("faults", dict, {}),
        console_timestamps=spec.get("console_timestamps", bool, False),
    )


def control_from_spec(spec: BackendSpec) -> SimControl:
    spec.only("backend", *ATTACH_OPTIONS)
    timeout = spec.get("timeout", float, 10.0)
    if ("control" in spec.data) == ("port_file" in spec.data):
        raise spec.error("control", "give exactly one of 'control' (HOST:PORT) and 'port_file'")
    if "control" in spec.data:
        host, _, port = spec.get("control", str).rpartition(":")
        if not host or not port.isdigit():
            raise spec.error("control", f"expected HOST:PORT, got {spec.data['control']!r}")
        return SimControl(host, int(port), board=spec.board, timeout=timeout)
    path = spec.path("port_file")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return SimControl(info["host"], int(info["control"]), board=spec.board, timeout=timeout)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InfraError(f"board '{spec.board}': virtual board port file {path}: {exc}") from None


def power_from_spec(spec: BackendSpec) -> VirtualPower:
    return VirtualPower(control_from_spec(spec))


def deployer_from_spec(spec: BackendSpec) -> VirtualDeployer:
    return VirtualDeployer(control_from_spec(spec))
