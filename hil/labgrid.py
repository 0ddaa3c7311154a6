"""hil on a labgrid lab: lease a place, resolve its consoles to pyserial URLs, drive its power.

hil does not schedule boards itself: a distributed lab's boards are labgrid *places* on a
`labgrid-coordinator`, and a run holds a place for as long as it uses the board.

We talk to labgrid through the ``labgrid-client`` CLI (argv lists, never a shell), not its Python
``ClientSession``: the CLI is labgrid's documented interface, while ``ClientSession`` is an internal
asyncio class that was rewritten wholesale for the gRPC coordinator (24.0) and would drag grpc
threads and an event loop into hil's process. A child process per call also makes release robust:
it runs in its own session, so a terminal Ctrl-C cannot kill it half-way, and a wedged gRPC
channel cannot hang hil past the call's timeout. The cost is ~0.5-1 s of interpreter start per
call, negligible against a board boot. ``show`` prints each acquired resource as a Python literal
(``pformat`` of a dict), which :func:`parse_show` reads with ``ast.literal_eval``.

Installing: labgrid is the optional extra ``hil[labgrid]``. labgrid depends on
``pyserial-labgrid``, a fork of pyserial 3.5 with RFC2217 fixes that installs the same ``serial``
package. If both it and ``pyserial`` are installed, pip happily writes one over the other (``pip
check`` stays silent) and ``pip uninstall pyserial`` then deletes ``serial`` altogether. hil
therefore depends on ``pyserial-labgrid`` itself, so ``pip install -e '.[test,labgrid]'`` in a fresh
venv yields exactly one distribution owning ``serial``. In an existing venv that already has
``pyserial``: ``pip uninstall -y pyserial && pip install --force-reinstall --no-deps
pyserial-labgrid``.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from shutil import which
from types import FrameType, TracebackType

from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from hil.errors import InfraError
from hil.lock import BoardBusy

log = logging.getLogger(__name__)

_HELD_BY = re.compile(r"^\s*acquired: (?P<who>\S+)$", re.MULTILINE)
_RESOURCE = re.compile(
    r"^Acquired resource '(?P<name>[^']+)' \((?P<path>[^)]+)\):\n(?P<body>(?:  .*\n?)+)",
    re.MULTILINE,
)
_ORPHANED = re.compile(r"^Orphaned resource '(?P<name>[^']+)'", re.MULTILINE)
_UNREACHABLE = "Could not connect to coordinator"
_NOT_ACQUIRED = re.compile(r"place \S+ is not acquired")


@dataclass(frozen=True)
class Resource:
    """One resource a place holds, as the coordinator reports it."""

    name: str
    cls: str
    avail: bool
    acquired: str | None
    params: Mapping[str, object]

    @property
    def is_serial(self) -> bool:
        return self.cls in ("NetworkSerialPort", "RawSerialPort")

    @property
    def is_power(self) -> bool:
        return self.cls.endswith("PowerPort") or self.cls == "PDUDaemonPort"


@dataclass(frozen=True)
class PlaceState:
    """What ``labgrid-client show`` says about a place."""

    holder: str | None  # labgrid's "HOST/USER", None when released
    resources: tuple[Resource, ...]
    orphaned: tuple[str, ...]  # resource names whose exporter is gone


def parse_show(text: str) -> PlaceState:
    """Read the output of ``labgrid-client -p PLACE show``."""
    held = _HELD_BY.search(text)
    holder = held["who"] if held and held["who"] != "None" else None
    resources = []
    for match in _RESOURCE.finditer(text):
        data = ast.literal_eval(match["body"].strip())
        resources.append(
            Resource(
                name=match["name"],
                cls=str(data["cls"]),
                avail=bool(data["avail"]),
                acquired=data["acquired"],
                params={k: v for k, v in data["params"].items() if k != "extra"},
            )
        )
    orphaned = tuple(m["name"] for m in _ORPHANED.finditer(text))
    return PlaceState(holder=holder, resources=tuple(resources), orphaned=orphaned)


def holder_display(holder: str) -> str:
    """labgrid's "HOST/USER" as the USER@HOST people read."""
    host, _, user = holder.partition("/")
    return f"{user}@{host}" if user else holder


def serial_url(resource: Resource) -> str | None:
    """The pyserial URL of a serial resource, None while it is unusable (no port yet)."""
    if resource.cls == "RawSerialPort":
        port = resource.params.get("port")
        return str(port) if port else None
    host, port = resource.params.get("host"), resource.params.get("port")
    if not resource.avail or not host or port is None:
        return None
    if resource.params.get("protocol", "rfc2217") == "raw":
        return f"socket://{host}:{port}"
    # ser2net may refuse to change line settings it does not own; the board's speed is fixed.
    return f"rfc2217://{host}:{port}?ign_set_control"


def _default_executable() -> str:
    # A venv's scripts sit beside its interpreter, which need not be on PATH (.venv/bin/hil).
    beside = Path(sys.executable).with_name("labgrid-client")
    return str(beside) if beside.exists() else (which("labgrid-client") or "labgrid-client")


class _CommandError(Exception):
    """labgrid-client exited non-zero; ``detail`` is its last stderr line."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class LabgridClient:
    """``labgrid-client`` bound to one coordinator and one place, named after the hil board."""

    board: str
    place: str
    coordinator: str
    executable: str = field(default_factory=_default_executable)
    env: Mapping[str, str] = field(default_factory=dict)  # e.g. LG_USERNAME / LG_HOSTNAME
    timeout: float = 30.0

    def run(self, *args: str) -> str:
        """Run one labgrid-client command for the place; its stdout.

        Ctrl-C / SIGTERM arriving meanwhile are held until the command is done, then re-raised:
        a half-run acquire or release would leave the coordinator in a state we do not know."""
        argv = [self.executable, "-x", self.coordinator, "-p", self.place, *args]
        try:
            proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        except OSError as exc:
            raise InfraError(
                f"board {self.board}: cannot run {self.executable} ({exc.strerror}); "
                "install it with pip install 'hil[labgrid]'"
            ) from None
        deferred: BaseException | None = None
        while True:
            try:
                out, err = proc.communicate(timeout=self.timeout)
                break
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise InfraError(
                    f"board {self.board}: labgrid-client {args[0]} on place {self.place} "
                    f"timed out after {self.timeout:g} s (coordinator {self.coordinator})"
                ) from None
            except (KeyboardInterrupt, SystemExit) as exc:
                deferred = exc
        if deferred is not None:
            raise deferred
        if proc.returncode != 0:
            if _UNREACHABLE in err:
                raise InfraError(
                    f"board {self.board}: labgrid coordinator {self.coordinator} is unreachable"
                )
            lines = [line for line in err.splitlines() if line.strip()]
            raise _CommandError(lines[-1] if lines else f"exit status {proc.returncode}")
        return out

    def fail(self, command: str, error: _CommandError) -> InfraError:
        return InfraError(
            f"board {self.board}: labgrid-client {command} on place {self.place} failed: "
            f"{error.detail}"
        )

    def state(self) -> PlaceState:
        try:
            return parse_show(self.run("show"))
        except _CommandError as exc:
            raise self.fail("show", exc) from None


@dataclass(frozen=True)
class LabgridPower:
    """hil PowerBackend over the place's power resource (``labgrid-client power``)."""

    client: LabgridClient
    cycle_delay: float = 2.0  # seconds off during reset, so the board really loses power

    def _power(self, *args: str) -> None:
        try:
            self.client.run("power", *args)
        except _CommandError as exc:
            raise self.client.fail(f"power {args[0]}", exc) from None

    def power_on(self) -> None:
        self._power("on")

    def power_off(self) -> None:
        self._power("off")

    def reset(self) -> None:
        self._power("cycle", "--delay", f"{self.cycle_delay:g}")

    def close(self) -> None:
        """The place, not the backend, holds the power switch: nothing to let go of here."""


class _HeldElsewhere(Exception):
    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


class _SerialNotReady(Exception):
    def __init__(self, resource: str) -> None:
        super().__init__(resource)
        self.resource = resource


def _raise_system_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@dataclass
class PlaceLease:
    """Hold a labgrid place for the duration of a ``with`` block; always release it.

    ``wait``: if someone else holds the place, poll until ``max_wait`` seconds pass.
    ``settle``: how long a serial port may stay unusable after acquire before we release and
    re-acquire (the exporter-restart trap: place still acquired, its port None); after
    ``reacquire_attempts`` such rounds the lease fails naming the board and the resource.
    """

    client: LabgridClient
    wait: bool = False
    max_wait: float = 300.0
    poll_interval: float = 2.0
    settle: float = 3.0
    reacquire_attempts: int = 2
    serial_urls: dict[str, str] = field(default_factory=dict, init=False)
    power: LabgridPower | None = field(default=None, init=False)
    _held: bool = field(default=False, init=False)  # a release is owed
    _trapped_sigterm: bool = field(default=False, init=False)

    def __enter__(self) -> PlaceLease:
        self._trap_sigterm()
        try:
            self._acquire()
            self.refresh()
        except BaseException:
            self._release_quietly()
            self._restore_sigterm()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None and self._held:
                self._release()
            else:
                self._release_quietly()
        finally:
            self._restore_sigterm()

    def console_url(self, name: str | None = None) -> str:
        """The URL of serial resource ``name``, or of the only one when ``name`` is None."""
        if name is None and len(self.serial_urls) == 1:
            return next(iter(self.serial_urls.values()))
        if name in self.serial_urls:
            return self.serial_urls[name]
        known = ", ".join(sorted(self.serial_urls)) or "none"
        wanted = f"serial resource {name!r}" if name else "a single serial resource"
        raise InfraError(
            f"board {self.client.board}: place {self.client.place} has no {wanted} "
            f"(serial resources: {known})"
        )

    def refresh(self) -> None:
        """Resolve the place's resources again, e.g. after its console dropped: an exporter
        restart moves ser2net to a new port, or leaves the port None until we re-acquire."""
        for attempt in range(self.reacquire_attempts + 1):
            try:
                state = self._settled_state()
                break
            except _SerialNotReady as exc:
                if attempt == self.reacquire_attempts:
                    raise InfraError(
                        f"board {self.client.board}: labgrid place {self.client.place} resource "
                        f"{exc.resource} has no usable serial port after {attempt} re-acquire(s)"
                    ) from None
                log.warning(
                    "board %s: resource %s unusable, re-acquiring place %s",
                    self.client.board,
                    exc.resource,
                    self.client.place,
                )
                self._release()
                self._acquire()
        self.serial_urls = {
            r.name: url for r in state.resources if r.is_serial and (url := serial_url(r))
        }
        has_power = any(r.is_power for r in state.resources)
        self.power = LabgridPower(self.client) if has_power else None

    def _settled_state(self) -> PlaceState:
        def check() -> PlaceState:
            state = self.client.state()
            if state.orphaned:
                raise _SerialNotReady(state.orphaned[0])
            for r in state.resources:
                if r.is_serial and (r.acquired is None or serial_url(r) is None):
                    raise _SerialNotReady(r.name)
            return state

        retrying = Retrying(
            retry=retry_if_exception_type(_SerialNotReady),
            stop=stop_after_delay(self.settle),
            wait=wait_fixed(0.25),
            reraise=True,
        )
        return retrying(check)

    def _acquire(self) -> None:
        def attempt() -> None:
            # A refusal is re-tried once when nobody holds the place any more: its holder may
            # have released it between our acquire and our look.
            for retry in (True, False):
                # Owed from the start: an interrupt held back until acquire finished may fire.
                self._held = True
                try:
                    self.client.run("acquire")
                    return
                except _CommandError as exc:
                    self._held = False
                    holder = self.client.state().holder
                    if holder is not None:
                        raise _HeldElsewhere(holder) from None
                    if not retry:
                        raise self.client.fail("acquire", exc) from None

        retrying = Retrying(
            retry=retry_if_exception_type(_HeldElsewhere),
            stop=stop_after_delay(self.max_wait if self.wait else 0),
            wait=wait_fixed(self.poll_interval),
        )
        try:
            retrying(attempt)
        except RetryError as exc:
            holder = exc.last_attempt.exception()
            assert isinstance(holder, _HeldElsewhere)
            raise BoardBusy(
                f"board {self.client.board} is acquired by {holder_display(holder.holder)}"
            ) from None

    def _release(self) -> None:
        try:
            self.client.run("release")
        except _CommandError as exc:
            # "not acquired": an interrupted acquire never completed; nothing to give back.
            if not _NOT_ACQUIRED.search(exc.detail):
                raise self.client.fail("release", exc) from None
        self._held = False

    def _release_quietly(self) -> None:
        """Release while another exception is on its way out: report, never mask it."""
        if not self._held:
            return
        try:
            self._release()
        except InfraError as exc:
            log.error("%s", exc)

    def _trap_sigterm(self) -> None:
        # SIGTERM kills by default, skipping __exit__; as SystemExit it unwinds through it.
        # Only from the main thread (Python's rule), and never over a handler someone else set.
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _raise_system_exit)
            self._trapped_sigterm = True

    def _restore_sigterm(self) -> None:
        if self._trapped_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self._trapped_sigterm = False
