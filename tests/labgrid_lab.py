"""A throw-away labgrid lab on loopback for the labgrid tests: coordinator, exporter, two places.

Place lab-juno-07 (board juno-07): a raw-TCP NetworkSerialPort served by a console thread here,
plus a simplerest NetworkPowerPort served by an HTTP thread here. Place lab-juno-08 (board
juno-08): a pty exported as RawSerialPort, which the exporter serves through ser2net RFC2217.
Everything listens on 127.0.0.1 only; the exporter's ser2net is bound there by a wrapper."""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from shutil import which

import pytest
import serial

from hil.labgrid import LabgridClient

BOARDS = {"juno-07": "lab-juno-07", "juno-08": "lab-juno-08"}
BANNERS = {"juno-07": b"juno-07 raw console", "juno-08": b"juno-08 pty console"}
EXPORTER = "hiltest"


def tool(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    return which(name) or next((p for p in (f"/usr/sbin/{name}",) if Path(p).exists()), None)


def missing_tools() -> list[str]:
    needed = ("labgrid-coordinator", "labgrid-exporter", "labgrid-client", "ser2net")
    return [name for name in needed if tool(name) is None]


# The marks of every test that needs a real coordinator, exporter and ser2net.
LABGRID_TIER = [
    pytest.mark.labgrid,
    pytest.mark.skipif(
        bool(missing_tools()),
        reason=f"needs {', '.join(missing_tools())}: "
        "pip install -e '.[labgrid]' && apt-get install -y ser2net",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_until(url: str, wanted: bytes, timeout: float = 5.0) -> bytes:
    """Bytes read from ``url`` until ``wanted`` shows up (or the deadline passes)."""
    seen = b""
    deadline = time.monotonic() + timeout
    with serial.serial_for_url(url, timeout=0.2) as port:
        while wanted not in seen and time.monotonic() < deadline:
            seen += port.read(256)
    return seen


class _Console(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.request.sendall(BANNERS["juno-07"] + b"\r\n")
                time.sleep(0.1)


class _ThreadingTCP(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Relay(http.server.BaseHTTPRequestHandler):
    requests: list[str]  # set per lab

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"1")

    def log_message(self, *_args: object) -> None:
        pass


def _ser2net_on_loopback(directory: Path) -> Path:
    """A ``ser2net`` for the exporter's PATH that binds its RFC2217 accepter to 127.0.0.1."""
    real = tool("ser2net")
    wrapper = directory / "ser2net"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "args = [a.replace('),tcp,', '),tcp,127.0.0.1,') for a in sys.argv[1:]]\n"
        f"os.execv({real!r}, [{real!r}, *args])\n"
    )
    wrapper.chmod(0o755)
    return directory


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started in its own session, and everything it spawned (ser2net)."""
    for sig, grace in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
    raise AssertionError(f"process group {proc.pid} survived SIGKILL")


@dataclass
class Lab:
    workdir: Path
    coordinator: str = ""
    power_requests: list[str] = field(default_factory=list)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _servers: list[socketserver.BaseServer] = field(default_factory=list)
    _fds: list[int] = field(default_factory=list)

    def client(self, board: str, env: dict[str, str] | None = None) -> LabgridClient:
        return LabgridClient(
            board=board, place=BOARDS[board], coordinator=self.coordinator, env=env or {}
        )

    def holder(self, board: str) -> str | None:
        return self.client(board).state().holder

    def labgrid(self, *args: str) -> str:
        argv = [str(tool("labgrid-client")), "-x", self.coordinator, *args]
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout

    def start(self) -> None:
        console = _ThreadingTCP(("127.0.0.1", 0), _Console)
        relay_handler = type("Relay", (_Relay,), {"requests": self.power_requests})
        relay = http.server.ThreadingHTTPServer(("127.0.0.1", 0), relay_handler)
        for server in (console, relay):
            self._servers.append(server)
            threading.Thread(target=server.serve_forever, daemon=True).start()
        pts = self._start_pty()
        config = self.workdir / "exporter.yaml"
        config.write_text(
            "raw:\n  NetworkSerialPort:\n    host: 127.0.0.1\n"
            f"    port: {console.server_address[1]}\n    protocol: raw\n"
            f"pty:\n  RawSerialPort:\n    port: {pts}\n    speed: 115200\n"
            "pwr:\n  NetworkPowerPort:\n    model: simplerest\n"
            f"    host: 'http://127.0.0.1:{relay.server_address[1]}/relay/{{index}}/{{value}}'\n"
            "    index: 0\n"
        )
        port = free_port()
        self.coordinator = f"127.0.0.1:{port}"
        self._spawn("coordinator", "labgrid-coordinator", "-l", self.coordinator)
        self._wait_for(lambda: _listening(port), "coordinator listening")
        self.start_exporter()
        for board, place in BOARDS.items():
            self.labgrid("-p", place, "create")
            groups = ("raw", "pwr") if board == "juno-07" else ("pty",)
            self.labgrid("-p", place, "add-match", *(f"{EXPORTER}/{g}/*" for g in groups))

    def start_exporter(self) -> None:
        bindir = _ser2net_on_loopback(self.workdir)
        env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
        self._spawn(
            "exporter",
            "labgrid-exporter",
            *("-c", self.coordinator, "-n", EXPORTER, "--hostname", "127.0.0.1"),
            str(self.workdir / "exporter.yaml"),
            env=env,
        )
        self._wait_for(self._exported, "exporter resources")

    def restart_exporter(self) -> None:
        _stop_group(self._procs.pop("exporter"))
        self._wait_for(lambda: not self._exported(), "exporter gone")
        self.start_exporter()

    def stop(self) -> None:
        for name in list(self._procs):
            _stop_group(self._procs.pop(name))
        self._stop.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for fd in self._fds:
            os.close(fd)

    def _exported(self) -> bool:
        listing = self.labgrid("resources")
        return all(f"{EXPORTER}/{g}/" in listing for g in ("raw", "pty", "pwr"))

    def _spawn(
        self, name: str, program: str, *args: str, env: dict[str, str] | None = None
    ) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self._procs[name] = subprocess.Popen(
            [str(tool(program)), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,  # the coordinator keeps places.yaml in its working directory
            start_new_session=True,
        )
        log.close()

    def _start_pty(self) -> str:
        master, slave = os.openpty()
        self._fds += [master, slave]
        os.set_blocking(master, False)

        def feed() -> None:
            while not self._stop.wait(0.1):
                # Nobody reads while no client is connected to ser2net: drop, don't block.
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(master, BANNERS["juno-08"] + b"\r\n")

        threading.Thread(target=feed, daemon=True).start()
        return os.ttyname(slave)

    def _wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.CalledProcessError):
                if ready():
                    return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; logs in {self.workdir}")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running_lab(workdir: Path) -> Iterator[Lab]:
    lab = Lab(workdir)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
