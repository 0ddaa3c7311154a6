"""A QEMU virt board that hil launches itself: the emulator is the board. Power-on starts
qemu-system-aarch64 on the deployed bundle's firmware, power-off stops it, so the board's
consoles exist only while it runs. ``power = {backend = "qemu"}``, options ``smp``, ``mem_mb``,
``workdir`` (where ``qemu.log`` goes, default ``build/qemu/<board>`` beside the lab file);
``deploy = {backend = "qemu"}`` (or no deploy table) records the bundle the next power-on boots.

The two UART ports are chosen when the session opens the board, so the console URLs stay the
same across power-cycles; QEMU waits for a client on each UART before it runs, so consoles that
connect whenever it is up (``Console.open(connect_now=False)``) miss no byte. With the board's
``xen_src``/``xen_image`` the bundle carries Xen, and the boot is Xen path A
(hil.emulator.xen_boot).

Bundles for qemu-virt boards: the scenario's images (TF-A, test SPMC, the probe; with a Xen,
Xen as BL33 and the probe, or with ``guest = "linux"`` the Linux guest, as its dom0), see
:func:`bundle`."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from hil.boards.builds import board_guest, board_xen, qemu_firmware
from hil.bundle import Bundle, load_verified
from hil.emulator.qemu import QemuConfig, QemuError, QemuVirt, free_port
from hil.emulator.xen_boot import VIRT_DTB, virt_dtb, xen_config
from hil.errors import ConfigError, InfraError
from hil.firmware import toolchain
from hil.firmware.build import BuildError
from hil.firmware.bundle import FirmwareBundle, make_bundle
from hil.guest.boot import linux_dom0
from hil.lab import BoardConfig
from hil.scenario import Scenario

NS, SECURE = "ns", "secure"  # console names: boards/qemu-virt.toml's stages use them
QEMU = "qemu-system-aarch64"
OPTIONS = ("backend", "smp", "mem_mb", "workdir")


class QemuBoard:
    """A :class:`hil.boards.LaunchedBoard`: one QEMU virt machine per power-on."""

    consoles_need_power = True
    # Nothing between QEMU 7.2's UARTs and the host: a PL011 write is written to its socket
    # (qemu_chr_fe_write_all) before the vCPU goes on, under the lock that orders every device
    # access, so whatever either UART printed before a line on the other is already readable
    # on the host when that line is; the readers' sync (BootMachine._drain) then collects it.
    console_latency_s = 0.0

    def __init__(
        self, name: str, workdir: Path, smp: int = 2, mem_mb: int = 2048, xen: bool = False
    ) -> None:
        self.name, self.workdir = name, workdir
        self.qemu = Path(shutil.which(QEMU) or QEMU)
        self.smp, self.mem_mb = smp, mem_mb
        self.xen = xen  # its bundles boot Xen, from a DTB hil makes (hil.emulator.xen_boot)
        self._dtb_maker: threading.Thread | None = None
        self.ports: tuple[int, int] | None = None
        self.bundle: FirmwareBundle | None = None
        self._machine: QemuVirt | None = None
        self._killed = False  # hil killed the running machine (case_done), it did not die

    def open(self) -> None:
        # Checked up front: the case's bundle step builds firmware with the same tools.
        gone = toolchain.missing()
        if gone:
            raise InfraError(
                f"board '{self.name}': missing {', '.join(gone)}: {toolchain.SETUP_HINT}"
            )
        if self.ports is None:
            ns = free_port()
            secure = free_port()
            while secure == ns:
                secure = free_port()
            self.ports = (ns, secure)
        if self.xen and self._dtb_maker is None:
            # The machine's DTB (a QEMU run of its own) is made while the first bundle is.
            self._dtb_maker = threading.Thread(
                target=self._make_dtb, name=f"dtb-{self.name}", daemon=True
            )
            self._dtb_maker.start()

    def _make_dtb(self) -> None:
        with contextlib.suppress(QemuError, OSError):  # the first boot makes it again, and says
            virt_dtb(self.qemu, self.workdir / "xen" / VIRT_DTB, self.smp, self.mem_mb)

    def console_urls(self) -> dict[str, str]:
        if self.ports is None:
            raise InfraError(f"board '{self.name}': not opened")
        ns, secure = self.ports
        return {NS: f"socket://127.0.0.1:{ns}", SECURE: f"socket://127.0.0.1:{secure}"}

    def deploy(self, bundle: Path) -> None:
        verified = load_verified(self.name, bundle)  # every image is there and intact
        try:
            self.bundle = FirmwareBundle.of(verified)
        except ConfigError as exc:  # a bundle without QEMU images
            raise InfraError(f"board '{self.name}': cannot boot bundle {bundle}: {exc}") from exc

    def machine(self) -> QemuVirt:
        """The QEMU a power-on runs (not started): the deployed bundle on this board's ports."""
        if self.ports is None:
            raise InfraError(f"board '{self.name}': not opened")
        return QemuVirt(self.config(), self.workdir, self.ports, wait_for_consoles=True)

    def config(self) -> QemuConfig:
        """How QEMU boots the deployed bundle: the probe as BL33, or Xen (path A) with it."""
        if self.bundle is None:
            raise InfraError(f"board '{self.name}': nothing deployed to boot")
        if self.bundle.xen is None:
            return QemuConfig(
                bios=self.bundle.bios, qemu=self.qemu, smp=self.smp, mem_mb=self.mem_mb
            )
        linux = self.bundle.linux
        dom0 = linux_dom0(linux) if linux is not None else None
        return xen_config(self.bundle, self.qemu, self.workdir / "xen", self.smp, self.mem_mb, dom0)

    def power_on(self) -> None:
        if self._machine is not None and self._machine.running:
            return
        try:
            machine = self._machine = self.machine()
            self._killed = False
            machine.start()
        except QemuError as exc:
            raise InfraError(f"board '{self.name}': {exc}") from exc

    def power_off(self) -> None:
        machine, self._machine = self._machine, None
        if machine is not None:
            machine.close()

    def reset(self) -> None:
        # A fresh process, not a QMP system_reset: it boots what was deployed since.
        self.power_off()
        self.power_on()

    def case_done(self) -> None:
        """Kill QEMU without waiting: nothing reads its consoles any more, and its teardown
        (~10 ms, more on a busy host) then overlaps the judging of the case instead of holding
        up the next one's power-off, which reaps it. SIGKILL, not power_off's SIGTERM: QEMU adds
        no line to qemu.log, which the case copies afterwards. A QEMU that already exited on
        its own is left to say so (failure)."""
        if self._machine is not None and self._machine.running:
            self._killed = True
            self._machine.kill_soon()

    def close(self) -> None:
        self.power_off()
        if self._dtb_maker is not None:
            self._dtb_maker.join()  # its QEMU ends by itself within a second

    def process_log(self) -> Path | None:
        return self.workdir / "qemu.log"

    def watch(self, died: Callable[[], None]) -> None:
        """Not needed: the consoles are the process's own sockets and close with it."""

    def failure(self) -> str | None:
        machine = self._machine
        if machine is None or machine.running or self._killed:
            return None
        return f"QEMU exited; see {self.process_log()}"


def launcher(board: BoardConfig, workdir: Path) -> QemuBoard:
    spec = board.power
    spec.only(*OPTIONS)
    default_workdir = spec.source.parent / "build" / "qemu" / board.name
    return QemuBoard(
        board.name,
        spec.optional_path("workdir") or default_workdir,
        spec.get("smp", int, 2),
        spec.get("mem_mb", int, 2048),
        xen=board.xen_src is not None or board.xen_image is not None,
    )


def prepare(board: BoardConfig) -> None:
    """Build what the board's bundles need before its first case, so a failure is one line.
    Xen first: a source that is not Xen is refused before anything else is built."""
    board_xen(board)
    qemu_firmware(board)
    board_guest(board)


def bundle(scenario: Scenario, board: BoardConfig, directory: Path) -> Bundle:
    """The bundle of a qemu-virt board: the scenario's images (TF-A, test SPMC, the probe; with
    a Xen from the lab's ``xen_src`` or ``xen_image``, Xen as BL33 and the probe as its dom0)
    built for it."""
    xen = board_xen(board)
    # BL33 is replaced per bundle (fiptool update): Xen needs no TF-A build of its own.
    fw = qemu_firmware(board)
    try:
        return make_bundle(fw, scenario, directory, board.type.name, xen, board_guest(board)).bundle
    except (toolchain.ToolchainError, BuildError) as exc:
        raise InfraError(f"board '{board.name}': firmware: {exc}") from exc
