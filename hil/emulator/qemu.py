"""Run qemu-system-aarch64 as a QEMU virt board with EL3 + EL2, UARTs on TCP, QMP control.

QEMU starts paused (``-S``) so that consoles can connect before the first byte is printed;
:meth:`QemuVirt.boot` then lets the CPUs run. Both UARTs listen on free 127.0.0.1 ports chosen
at launch (``nowait``: QEMU never blocks on them). No network device exists (``-nic none``).

With ``wait_for_consoles`` (a board hil launches at power-on), the ports are given and QEMU
itself waits (``wait=on``) until a client is connected to each UART before it runs at all:
consoles that connect whenever QEMU is up miss nothing, and no ``cont`` is needed.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from qemu.qmp import QMPClient, QMPError

QMP_TIMEOUT_S = 5.0
START_ATTEMPTS = 3  # a free port can be taken between choosing it and QEMU binding it
WAITING = b"QEMU waiting for connection"  # printed once a wait=on server socket listens


class QemuError(RuntimeError):
    """QEMU could not be started or controlled."""


@dataclass(frozen=True)
class Loader:
    """A raw file QEMU places in guest memory before reset (``-device loader``)."""

    path: Path
    addr: int


@dataclass(frozen=True)
class QemuConfig:
    """How to boot: firmware image, optional DTB and loaders (Xen path A), machine size."""

    bios: Path
    qemu: Path = Path("qemu-system-aarch64")
    smp: int = 2
    mem_mb: int = 2048
    dtb: Path | None = None
    loaders: tuple[Loader, ...] = field(default=())


def machine_args(smp: int, mem_mb: int) -> list[str]:
    """The machine options shared by boots and ``dumpdtb`` (their DTBs must agree)."""
    return [
        # acpi=off: with -bios QEMU 7.2 turns ACPI on and drops the pl061 GPIO that a dumpdtb
        # (no -bios) still describes; Linux as dom0 probes it and dies on the missing device.
        "-machine", "virt,secure=on,virtualization=on,gic-version=3,acpi=off",
        "-cpu", "max", "-smp", str(smp), "-m", str(mem_mb),
        "-nic", "none", "-display", "none",
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


QmpCommand = tuple[str, dict[str, object]]


async def _qmp(sock: Path, *commands: QmpCommand) -> None:
    client = QMPClient("hil")
    await asyncio.wait_for(client.connect(str(sock)), QMP_TIMEOUT_S)
    try:
        for name, args in commands:
            await asyncio.wait_for(client.execute(name, args or None), QMP_TIMEOUT_S)
    finally:
        await client.disconnect()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


class QemuVirt:
    """One QEMU process. Use as a context manager, or call :meth:`start` and :meth:`close`."""

    def __init__(
        self,
        config: QemuConfig,
        workdir: Path,
        ports: tuple[int, int] | None = None,
        wait_for_consoles: bool = False,
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.fixed_ports = ports  # (NS, secure); None: free ones at each start
        self.wait_for_consoles = wait_for_consoles
        # Unix socket paths are limited to ~107 bytes: keep it short, not under workdir.
        self._sock_dir = Path(tempfile.mkdtemp(prefix="hil-qmp-"))
        self.qmp_socket = self._sock_dir / "qmp.sock"
        self.log = workdir / "qemu.log"
        self.ns_port, self.secure_port = ports or (0, 0)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def ns_uart_url(self) -> str:
        """pyserial URL of the normal-world UART (pl011 at 0x09000000)."""
        return f"socket://127.0.0.1:{self.ns_port}"

    @property
    def secure_uart_url(self) -> str:
        """pyserial URL of the secure-world UART (pl011 at 0x09040000)."""
        return f"socket://127.0.0.1:{self.secure_port}"

    def argv(self) -> list[str]:
        """The QEMU command line for the current ports (an argv list, never a shell string)."""
        c = self.config
        argv = [str(c.qemu), *machine_args(c.smp, c.mem_mb), "-bios", str(c.bios)]
        wait = "on" if self.wait_for_consoles else "off"
        for port in (self.ns_port, self.secure_port):  # first -serial is NS, second secure
            argv += ["-serial", f"tcp:127.0.0.1:{port},server=on,wait={wait}"]
        argv += ["-qmp", f"unix:{self.qmp_socket},server=on,wait=off", "-no-reboot"]
        if not self.wait_for_consoles:
            argv.append("-S")
        if c.dtb is not None:
            argv += ["-dtb", str(c.dtb)]
        for ld in c.loaders:
            argv += ["-device", f"loader,file={ld.path},addr={ld.addr:#x},force-raw=on"]
        return argv

    def start(self) -> None:
        """Launch QEMU paused and wait until QMP answers; then connect consoles and boot()."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(1 if self.fixed_ports else START_ATTEMPTS):
            if not self.fixed_ports:
                self.ns_port = self.secure_port = free_port()
                while self.secure_port == self.ns_port:
                    self.secure_port = free_port()
            self.qmp_socket.unlink(missing_ok=True)
            with self.log.open("wb") as log:
                self._proc = subprocess.Popen(
                    self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
            # Safety net: kill QEMU when this object is collected or the interpreter exits.
            weakref.finalize(self, _kill, self._proc)
            if self._wait_ready():
                return
        raise QemuError(f"QEMU did not start; see {self.log}")

    def _wait_ready(self) -> bool:
        """QMP answers, or (``wait_for_consoles``) the first UART listens: QMP cannot answer
        before both consoles are connected then."""
        assert self._proc is not None
        deadline = time.monotonic() + QMP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if self.wait_for_consoles:
                if WAITING in self.log.read_bytes():
                    return True
            elif self.qmp_socket.exists():
                try:
                    asyncio.run(_qmp(self.qmp_socket, ("query-status", {})))
                    return True
                except (OSError, QMPError, TimeoutError):
                    pass
            time.sleep(0.01)  # QEMU is up within a few hundred ms: poll finely
        self.kill()
        return False

    def command(self, *commands: QmpCommand) -> None:
        """Run QMP commands, in order, over one connection: ``("cont", {})``, ..."""
        if self._proc is None or self._proc.poll() is not None:
            raise QemuError(f"QEMU is not running; see {self.log}")
        try:
            asyncio.run(_qmp(self.qmp_socket, *commands))
        except (OSError, EOFError, QMPError, TimeoutError) as e:
            names = ", ".join(name for name, _ in commands)
            raise QemuError(f"QMP {names} failed: {e!r}; see {self.log}") from e

    def boot(self) -> None:
        """Let the paused CPUs run (after consoles are connected)."""
        self.command(("cont", {}))

    def reset(self) -> None:
        """Reset the machine as a power cycle would; the UART connections stay up.

        ``-no-reboot`` turns every reset request into an exit (so a crashing guest cannot loop);
        QEMU applies that policy when the request is made, so it is lifted around our own reset.
        """
        self.command(
            ("set-action", {"reboot": "reset"}),
            ("system_reset", {}),
            ("set-action", {"reboot": "shutdown"}),
        )

    def kill(self) -> None:
        """Stop the process now."""
        if self._proc is not None:
            _kill(self._proc)

    def kill_soon(self) -> None:
        """Kill the process without waiting for it to end (``close`` reaps it)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        shutil.rmtree(self._sock_dir, ignore_errors=True)  # QMP is of no use to it any more

    def close(self) -> None:
        """Ask QEMU to quit (SIGTERM: the same orderly shutdown as QMP ``quit``, without a QMP
        session that cost more than the rest of a power-off); kill it if it does not exit
        promptly."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.kill()
        self._proc = None
        shutil.rmtree(self._sock_dir, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> QemuVirt:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
