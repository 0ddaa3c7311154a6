"""A QEMU virt board that hil launches itself: the emulator is the board. Power-on starts
qemu-system-aarch64 on the deployed bundle's firmware, power-off stops it, so the board's
consoles exist only while it runs. hil.power / hil.deploy register the back-ends lazily as
``qemu``: ``power = {backend = "qemu"}`` (options ``smp``, ``mem_mb``, ``workdir``: where
``qemu.log`` goes, default ``build/qemu/<board>`` beside the lab file) and
``deploy = {backend = "qemu"}``, which records the bundle the next power-on boots.

The two UART ports are chosen once per back-end (per session), so the console URLs stay the
same across power-cycles; QEMU waits for a client on each UART before it runs, so consoles that
connect whenever it is up (``Console.open(connect_now=False)``) miss no byte. With the board's
``xen_image`` the bundle carries Xen, and the boot is Xen path A (hil.emulator.xen_boot)."""

from __future__ import annotations

import shutil
import weakref
from pathlib import Path

from hil.backend import BackendSpec
from hil.deploy import verified_bundle
from hil.emulator.qemu import QemuConfig, QemuError, QemuVirt, free_port
from hil.emulator.xen_boot import xen_config
from hil.errors import ConfigError, InfraError
from hil.firmware import toolchain
from hil.firmware.bundle import FirmwareBundle

NS, SECURE = "ns", "secure"  # console names: boards/qemu-virt.toml's stages use them
QEMU = "qemu-system-aarch64"

# The live power back-end of each board, for its deployer (both are built from the board's
# config separately; the session keeps the power back-end alive while the deployer is used).
_POWER: weakref.WeakValueDictionary[str, QemuPower] = weakref.WeakValueDictionary()


class QemuPower:
    """Power back-end (and :class:`hil.power.LaunchedBoard`) of one QEMU virt board."""

    def __init__(self, board: str, workdir: Path, smp: int = 2, mem_mb: int = 2048) -> None:
        # Checked up front: the case's bundle step builds firmware with the same tools.
        gone = toolchain.missing()
        if gone:
            raise InfraError(f"board '{board}': missing {', '.join(gone)}: {toolchain.SETUP_HINT}")
        self.board, self.workdir = board, workdir
        self.qemu = Path(shutil.which(QEMU) or QEMU)
        self.smp, self.mem_mb = smp, mem_mb
        ns = free_port()
        secure = free_port()
        while secure == ns:
            secure = free_port()
        self.ports = (ns, secure)
        self.bundle: FirmwareBundle | None = None
        self._machine: QemuVirt | None = None
        _POWER[board] = self

    def console_urls(self) -> dict[str, str]:
        ns, secure = self.ports
        return {NS: f"socket://127.0.0.1:{ns}", SECURE: f"socket://127.0.0.1:{secure}"}

    def deploy(self, bundle: Path) -> None:
        verified = verified_bundle(self.board, bundle)  # every image is there and intact
        try:
            self.bundle = FirmwareBundle.of(verified)
        except ConfigError as exc:  # a bundle without QEMU images
            raise InfraError(f"board '{self.board}': cannot boot bundle {bundle}: {exc}") from exc

    def machine(self) -> QemuVirt:
        """The QEMU a power-on runs (not started): the deployed bundle on this board's ports."""
        return QemuVirt(self.config(), self.workdir, self.ports, wait_for_consoles=True)

    def config(self) -> QemuConfig:
        """How QEMU boots the deployed bundle: the probe as BL33, or Xen (path A) with it."""
        if self.bundle is None:
            raise InfraError(f"board '{self.board}': nothing deployed to boot")
        if self.bundle.xen is None:
            return QemuConfig(
                bios=self.bundle.bios, qemu=self.qemu, smp=self.smp, mem_mb=self.mem_mb
            )
        return xen_config(self.bundle, self.qemu, self.workdir / "xen", self.smp, self.mem_mb)

    def power_on(self) -> None:
        if self._machine is not None and self._machine.running:
            return
        try:
            machine = self._machine = self.machine()
            machine.start()
        except QemuError as exc:
            raise InfraError(f"board '{self.board}': {exc}") from exc

    def power_off(self) -> None:
        machine, self._machine = self._machine, None
        if machine is not None:
            machine.close()

    def reset(self) -> None:
        # A fresh process, not a QMP system_reset: it boots what was deployed since.
        self.power_off()
        self.power_on()

    def close(self) -> None:
        self.power_off()


class QemuDeployer:
    """Hands the bundle to the board's QEMU power back-end, which boots it at the next power-on."""

    def __init__(self, board: str) -> None:
        self.board = board

    def deploy(self, bundle: Path) -> None:
        power = _POWER.get(self.board)
        if power is None:
            raise InfraError(
                f"board '{self.board}': deploy back-end 'qemu' needs power back-end 'qemu'"
            )
        power.deploy(bundle)


def power_from_spec(spec: BackendSpec) -> QemuPower:
    spec.only("backend", "smp", "mem_mb", "workdir")
    default_workdir = spec.source.parent / "build" / "qemu" / spec.board
    return QemuPower(
        spec.board,
        spec.optional_path("workdir") or default_workdir,
        spec.get("smp", int, 2),
        spec.get("mem_mb", int, 2048),
    )


def deployer_from_spec(spec: BackendSpec) -> QemuDeployer:
    spec.only("backend")
    return QemuDeployer(spec.board)
