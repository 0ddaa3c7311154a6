"""Boot the Linux guest as Xen's dom0 on QEMU virt and check what its FF-A driver registered.

The bundle is the scenario's usual one (TF-A, the test SPMC with the scenario's list, Xen as
BL33); only dom0 changes: the kernel Image and its initramfs (a second Xen boot module) instead
of the probe, with its own command line and ``dom0_mem``. The boot ends at the guest's
``HILLINUX end`` line, at QEMU's exit (the guest powered off, or panicked: ``panic=-1``), or at
the timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import serial

from hil.emulator.qemu import QemuVirt
from hil.emulator.xen_boot import Dom0, xen_config
from hil.firmware.bundle import FirmwareBundle
from hil.guest.linux import DOM0_ARGS, DOM0_XEN_ARGS, GuestKernel
from hil.guest.linux_log import END, LinuxLogError, LinuxView, parse_linux
from hil.guest.linux_oracle import check_linux

BOOT_TIMEOUT_S = 120.0  # Debian's 7.3 kernel: 7-14 s to the end line at load 5-11 on 2 cores


@dataclass(frozen=True)
class LinuxBoot:
    """One boot's console (NS UART: Xen's and the guest's lines) and the parsed view."""

    lines: tuple[str, ...]
    view: LinuxView | None
    error: str | None  # why there is no view: the guest's lines were incomplete or malformed

    def check(self, expected: LinuxView) -> list[str]:
        """Differences from ``expected`` (empty: pass); a boot without a view is one line."""
        if self.view is None:
            return [f"no result from the Linux guest: {self.error}"]
        return check_linux(expected, self.view)


def linux_dom0(guest: GuestKernel) -> Dom0:
    return Dom0(guest.image, DOM0_ARGS, DOM0_XEN_ARGS, guest.initrd)


def boot_linux(
    fb: FirmwareBundle,
    guest: GuestKernel,
    qemu: Path,
    workdir: Path,
    timeout: float = BOOT_TIMEOUT_S,
) -> LinuxBoot:
    """Boot ``fb`` with ``guest`` as dom0; the console goes to ``workdir/console.log`` too."""
    config = xen_config(fb, qemu, workdir / "xen", dom0=linux_dom0(guest))
    machine = QemuVirt(config, workdir)
    data = b""
    needle = END.encode()
    with (
        machine,
        serial.serial_for_url(machine.ns_uart_url, timeout=0.1) as ns,
        serial.serial_for_url(machine.secure_uart_url, timeout=0) as secure,
    ):
        machine.boot()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = ns.read(4096)
                secure.read(4096)  # drained so QEMU never blocks on it
            except serial.SerialException:  # QEMU exited: the guest powered off or panicked
                break
            data += chunk
            end = data.find(needle)
            if end >= 0 and b"\n" in data[end:]:
                break
            if not chunk and not machine.running:
                break
    (workdir / "console.log").write_bytes(data)
    text = data.decode("ascii", "replace")
    lines = tuple(line.rstrip("\r") for line in text.split("\n"))
    try:
        return LinuxBoot(lines, parse_linux(lines), None)
    except LinuxLogError as exc:
        return LinuxBoot(lines, None, str(exc))
