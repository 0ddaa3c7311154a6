"""Boot TF-A + the test SPMC + the probe (as BL33, no Xen) under QEMU and check every probe line
against the Python model of the SPMD + test SPMC."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import serial

from hil.emulator.qemu import QemuConfig, QemuVirt
from hil.firmware.build import Firmware
from hil.firmware.bundle import BIOS, build_images, make_bundle
from hil.firmware.direct import DirectSpmcEndpoint
from hil.probe import format_transcript, parse_transcript, run_plan
from hil.scenario import Scenario, load_scenario
from tests.firmware.conftest import (
    BOOT_TIMEOUT_S,
    END_LINE,
    REPO,
    boot_and_capture,
    read_until,
    split_lines,
)

pytestmark = pytest.mark.qemu

SCENARIOS = REPO / "firmware" / "scenarios"
# Well-formed, non-secure IDs, v1.0-sized entries, one page per entry, count disagreeing with
# the data, and a v1.2 guest: each drives a different branch of the SPMC and the probe.
BOOTED = [
    "all-secure",
    "one-non-secure",
    "fpi-size-8",
    "fpi-size-4096",
    "count-64",
    "guest-v1-2",
]


def expected_lines(scenario: Scenario) -> list[str]:
    plan = scenario.probe_plan()
    transcript = run_plan(plan, DirectSpmcEndpoint(scenario.spmc_config()))
    return list(format_transcript(transcript, plan, exception_level=2))


@pytest.mark.parametrize("name", BOOTED)
def test_probe_sees_what_the_model_predicts(firmware: Firmware, tmp_path: Path, name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    fb = make_bundle(firmware, scenario, tmp_path / "bundle")
    capture = boot_and_capture(
        QemuVirt(QemuConfig(bios=fb.bios, qemu=firmware.toolchain.qemu), tmp_path / "qemu")
    )

    assert capture.probe_lines() == expected_lines(scenario)
    assert parse_transcript(capture.ns).complete
    config = scenario.spmc_config()
    banner = next(line for line in capture.secure if line.startswith("HIL test SPMC v1 "))
    assert f"version=0x{config.version.word:08x} count={config.count}" in banner
    assert any(line.startswith("SPMC: 0x84000068 ") for line in capture.secure)


def test_reset_reruns_the_probe_on_the_same_console(firmware: Firmware, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "all-secure.toml")
    fb = make_bundle(firmware, scenario, tmp_path / "bundle")
    with QemuVirt(QemuConfig(bios=fb.bios, qemu=firmware.toolchain.qemu), tmp_path / "q") as q:
        with serial.serial_for_url(q.ns_uart_url, timeout=0.1) as ns:
            q.boot()
            first = read_until(ns, END_LINE, BOOT_TIMEOUT_S)
            q.reset()
            second = read_until(ns, END_LINE, BOOT_TIMEOUT_S)
        assert q.running
    probe = [line for line in split_lines(first) if line.startswith("HILPROBE ")]
    assert probe[-1] == END_LINE
    assert [line for line in split_lines(second) if line.startswith("HILPROBE ")] == probe


def test_close_stops_qemu(firmware: Firmware, tmp_path: Path) -> None:
    fb = make_bundle(firmware, load_scenario(SCENARIOS / "all-secure.toml"), tmp_path / "b")
    machine = QemuVirt(QemuConfig(bios=fb.bios, qemu=firmware.toolchain.qemu), tmp_path / "q")
    machine.start()
    pid = machine.pid
    assert machine.running and pid is not None
    started = time.monotonic()
    machine.close()
    assert not machine.running
    assert not Path(f"/proc/{pid}").exists()
    assert time.monotonic() - started < 3


def test_spmc_refuses_a_malformed_blob_at_boot(firmware: Firmware, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "all-secure.toml")
    blob = bytearray(scenario.spmc_config().encode())
    blob[20:24] = (4097).to_bytes(4, "little")  # data_len beyond one page
    images = build_images(firmware, bytes(blob), scenario.probe_plan().encode(), tmp_path / "img")
    config = QemuConfig(bios=images[BIOS], qemu=firmware.toolchain.qemu)
    # TF-A goes on to BL33 without an SPMC; the probe's first FF-A call then never returns.
    capture = boot_and_capture(QemuVirt(config, tmp_path / "q"), until="HILPROBE begin")

    assert "ERROR:   SPMC initialisation failed 0xfffffffe" in capture.ns
    assert any(line.endswith(" error=bad-scenario-blob") for line in capture.secure)
    assert not any(line.startswith("SPMC: ") for line in capture.secure)
