"""Power back-ends: how the controller switches a board on, off and makes it boot again. Each is
built from a board's ``power = {backend = ..., ...}`` table (see ``POWER``)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

from hil.backend import BackendSpec, Factory, Registry, run_command
from hil.errors import InfraError


class PowerBackend(Protocol):
    def power_on(self) -> None: ...
    def power_off(self) -> None: ...
    def reset(self) -> None: ...  # power-cycle / warm reset: the board boots again
    def close(self) -> None: ...


POWER: Registry[PowerBackend] = Registry("power")


def register_power(name: str, factory: Factory[PowerBackend] | str) -> None:
    """Make ``power = {backend = name}`` build boards' power back-ends with ``factory(spec)``."""
    POWER.register(name, factory)


class PduCommandPower:
    """A PDU or relay driven by commands: each action is an argv list from the config."""

    def __init__(
        self,
        board: str,
        on: tuple[str, ...],
        off: tuple[str, ...],
        reset: tuple[str, ...] | None = None,
        timeout: float = 30.0,
        off_time: float = 1.0,
    ) -> None:
        self.board, self.on, self.off, self.reset_argv = board, on, off, reset
        self.timeout, self.off_time = timeout, off_time

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> PduCommandPower:
        spec.only("backend", "on", "off", "reset", "timeout", "off_time")
        return cls(
            spec.board,
            spec.argv("on"),
            spec.argv("off"),
            spec.argv("reset", None),
            spec.get("timeout", float, 30.0),
            spec.get("off_time", float, 1.0),
        )

    def power_on(self) -> None:
        run_command(self.board, "power on", self.on, self.timeout)

    def power_off(self) -> None:
        run_command(self.board, "power off", self.off, self.timeout)

    def reset(self) -> None:
        if self.reset_argv is not None:
            run_command(self.board, "power reset", self.reset_argv, self.timeout)
            return
        self.power_off()
        time.sleep(self.off_time)  # let the supply rails drain before switching back on
        self.power_on()

    def close(self) -> None:
        pass


def pyocd_session(board: str, unique_id: str | None, target: str | None) -> Any:
    """An opened pyocd session on the board's debug probe (pyocd imported only when used)."""
    try:
        from pyocd.core.helpers import ConnectHelper
    except ImportError as exc:
        raise InfraError(f"board '{board}': pyocd is not installed: {exc}") from exc
    options = {"target_override": target} if target else {}
    try:
        session = ConnectHelper.session_with_chosen_probe(
            unique_id=unique_id, blocking=False, options=options
        )
    except Exception as exc:  # pyocd raises many unrelated types for USB/probe trouble
        raise InfraError(f"board '{board}': debug probe: {exc}") from exc
    if session is None:
        which = f"with id {unique_id!r}" if unique_id else "at all"
        raise InfraError(f"board '{board}': no debug probe {which} is connected (pyocd)")
    try:
        session.open()
    except Exception as exc:
        raise InfraError(f"board '{board}': debug probe {unique_id or ''}: {exc}") from exc
    return session


class PyOcdPower:
    """Reset and halt through a CMSIS-DAP/ST-Link/J-Link probe via pyocd's API. "Off" halts the
    cores: a probe cannot cut power."""

    def __init__(self, board: str, unique_id: str | None = None, target: str | None = None):
        self.board, self.unique_id, self.target = board, unique_id, target
        self._session: Any = None

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> PyOcdPower:
        spec.only("backend", "unique_id", "target")
        return cls(spec.board, spec.get("unique_id", str, None), spec.get("target", str, None))

    def _target(self) -> Any:
        if self._session is None:
            self._session = pyocd_session(self.board, self.unique_id, self.target)
        return self._session.target

    def power_on(self) -> None:
        self.reset()

    def power_off(self) -> None:
        self._guard("halt", lambda: self._target().halt())

    def reset(self) -> None:
        self._guard("reset", lambda: self._target().reset())

    def _guard(self, what: str, action: Any) -> None:
        try:
            action()
        except InfraError:
            raise
        except Exception as exc:
            raise InfraError(f"board '{self.board}': pyocd {what} failed: {exc}") from exc

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


class EmulatorPower:
    """An emulator (FVP, QEMU) is the board: power on launches its argv, off kills it."""

    def __init__(
        self,
        board: str,
        argv: tuple[str, ...],
        cwd: Path | None = None,
        log: Path | None = None,
        stop_timeout: float = 5.0,
    ) -> None:
        self.board, self.argv, self.cwd, self.log = board, argv, cwd, log
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> EmulatorPower:
        spec.only("backend", "argv", "cwd", "log", "stop_timeout")
        return cls(
            spec.board,
            spec.argv("argv"),
            spec.optional_path("cwd"),
            spec.optional_path("log"),
            spec.get("stop_timeout", float, 5.0),
        )

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running else None  # type: ignore[union-attr]

    def power_on(self) -> None:
        if self.running:
            return
        if shutil.which(self.argv[0]) is None:
            raise InfraError(
                f"board '{self.board}': emulator {self.argv[0]!r} is not installed on this machine"
            )
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(
                list(self.argv), cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        except OSError as exc:
            raise InfraError(f"board '{self.board}': emulator {self.argv[0]!r}: {exc}") from exc
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]

    def power_off(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def reset(self) -> None:
        self.power_off()
        self.power_on()

    def close(self) -> None:
        self.power_off()


register_power("pdu-command", PduCommandPower.from_spec)
register_power("pyocd", PyOcdPower.from_spec)
register_power("emulator", EmulatorPower.from_spec)
# A virtual board running elsewhere (attached by its control address); imported only when used.
register_power("virtual", "hil.boards.virtual:power_from_spec")
