"""Fixtures for the QEMU tier: firmware built once per session, boots that capture both UARTs."""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import serial

from hil.emulator.qemu import QemuVirt
from hil.firmware import toolchain
from hil.firmware.build import Firmware, build_firmware, default_build_dir

REPO = Path(__file__).resolve().parents[2]
SKIP_REASON = (
    "needs qemu-system-aarch64 + aarch64-linux-gnu-gcc + TF-A source: run scripts/setup-system.sh"
)
BOOT_TIMEOUT_S = 20.0
END_LINE = "HILPROBE end"


@dataclass
class Capture:
    """What the two UARTs printed during one boot (lines without line endings)."""

    ns: list[str]
    secure: list[str]

    def probe_lines(self) -> list[str]:
        return [line for line in self.ns if line.startswith("HILPROBE ")]


def read_until(port: serial.SerialBase, marker: str, timeout: float) -> bytes:
    """Bytes from ``port`` up to and including the line holding ``marker`` (or the timeout)."""
    data = b""
    deadline = time.monotonic() + timeout
    needle = marker.encode()
    while time.monotonic() < deadline:
        at = data.find(needle)
        if at >= 0 and b"\n" in data[at:]:  # the whole line: the marker need not end it
            break
        data += port.read(4096)
    return data


def split_lines(data: bytes) -> list[str]:
    return [line.rstrip("\r") for line in data.decode("ascii", "replace").split("\n") if line]


@pytest.fixture(scope="session")
def firmware() -> Firmware:
    if toolchain.missing():
        pytest.skip(SKIP_REASON)
    return build_firmware(toolchain.locate(), default_build_dir())


def boot_and_capture(machine: QemuVirt, until: str = END_LINE) -> Capture:
    """Start ``machine``, attach both UARTs before the CPUs run, boot, read the NS UART up to
    the line holding ``until`` (the probe's end by default).

    The machine is closed before returning: the probe spins in wfi forever otherwise."""
    with (
        machine,
        serial.serial_for_url(machine.ns_uart_url, timeout=0.1) as ns,
        serial.serial_for_url(machine.secure_uart_url, timeout=0.1) as secure,
    ):
        machine.boot()
        ns_data = read_until(ns, until, BOOT_TIMEOUT_S)
        secure_data = secure.read(1 << 16)
    return Capture(split_lines(ns_data), split_lines(secure_data))


def once_per_session(
    tmp_path_factory: pytest.TempPathFactory,
    worker_id: str,
    name: str,
    produce: Callable[[Path], Any],
) -> Any:
    """``produce(directory)``'s result (JSON-able), made once for the whole test session: the
    first xdist worker to ask makes it in a directory all workers share, the others wait on a
    file lock and read it back. For boots too costly to repeat per worker."""
    base = tmp_path_factory.getbasetemp()
    shared = (base if worker_id == "master" else base.parent) / name
    shared.mkdir(exist_ok=True)
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = shared / "result.json"
        if not record.exists():
            record.write_text(json.dumps(produce(shared)))
    return json.loads(record.read_text())
