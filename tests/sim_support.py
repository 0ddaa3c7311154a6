"""Helpers for the virtual-board tests: bundles made in the test, console reading."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import serial

from hil.ffa import PartitionInfo, parse_uuid
from hil.ffa.abi import V1_1
from hil.ffa.spmc import SpmcConfig
from hil.probe import ProbePlan

UUID_A = parse_uuid("a1a2a3a4-b1b2-c1c2-d1d2-d3d4d5d6d7d8")
UUID_B = parse_uuid("b0b1b2b3-0000-4000-8000-000000000002")
# One SP lacks the bit-15 ID convention, so Xen has something to say at FF-A init.
SPMC = SpmcConfig.from_partitions(
    [PartitionInfo(0x8001, 1, 0x3, UUID_A), PartitionInfo(0x0002, 1, 0x3, UUID_B)]
)
PLAN = ProbePlan.standard(V1_1, [UUID_A, UUID_B])


def make_bundle(
    directory: Path, spmc: SpmcConfig = SPMC, plan: ProbePlan = PLAN, scenario: str = "two-sps"
) -> Path:
    """A bundle as the contract defines it: the two blobs plus bundle.json with their sha256."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for role, name, blob in (
        ("spmc_config", "spmc-config.bin", spmc.encode()),
        ("probe_plan", "probe-plan.bin", plan.encode()),
    ):
        (directory / name).write_bytes(blob)
        files[role] = {"path": name, "sha256": hashlib.sha256(blob).hexdigest()}
    manifest = {"scenario": scenario, "board_type": "virtual", "files": files}
    (directory / "bundle.json").write_text(json.dumps(manifest), encoding="utf-8")
    return directory


# pyserial's socket:// in_waiting is only 0 or 1, so read big chunks under a short timeout.
CHUNK = 1 << 16


def connect(url: str) -> serial.SerialBase:
    return serial.serial_for_url(url, timeout=0.05)


def read_until(port: serial.SerialBase, marker: bytes, timeout: float = 10.0) -> bytes:
    """Everything read up to and including ``marker``; fails the test on timeout."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    while marker not in data:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} within {timeout} s; got ...{bytes(data[-300:])!r}")
        data += port.read(CHUNK)
    return bytes(data)


def read_for(port: serial.SerialBase, seconds: float) -> bytes:
    """Everything that arrives within ``seconds``."""
    data = bytearray()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        data += port.read(CHUNK)
    return bytes(data)


def last_boot(data: bytes) -> list[str]:
    """The lines of the last boot in a capture (from its last TF-A banner on)."""
    start = data.rfind(b"NOTICE:  Booting Trusted Firmware")
    assert start >= 0, "no TF-A banner in the capture"
    return data[start:].decode().splitlines()
