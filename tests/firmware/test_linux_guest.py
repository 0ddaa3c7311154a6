"""The Linux tier: Debian's arm64 kernel (7.3) with its FF-A driver module boots as Xen's dom0
(Xen 4.21.2 and 4.22.0 from ../shared/xen, TF-A + the test SPMC on QEMU virt) and must register
exactly the devices the oracle predicts for the scenario and Xen release.

Nothing is compiled for Linux: setup-system.sh fetched the kernel, the initramfs is written in
Python (cached in the build dir by input hash); each Xen build is shared with the real-Xen
tier's cache. Six boots in all, one per (Xen, scenario), made once per session and read by
every test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hil.cli import main
from hil.firmware import toolchain
from hil.firmware.build import Firmware, default_build_dir
from hil.firmware.bundle import XenImage, make_bundle
from hil.firmware.xen import XenSource, build_xen
from hil.guest import linux
from hil.guest.boot import LinuxBoot, boot_linux
from hil.guest.linux_log import parse_linux
from hil.guest.linux_oracle import check_linux, expect_linux
from hil.scenario import SCENARIO_DIR, load_scenario
from hil.xen.oracle import XenOptions
from tests.firmware.conftest import SKIP_REASON, once_per_session
from tests.firmware.test_real_xen import XEN_SOURCES
from tests.labs import BOARDS_DIR

XENS = {"xen-4.21": "xen-4.21.2.tar.xz", "xen-4.22": "xen-4.22.0.tar.xz"}
SCENARIOS = ("all-secure", "one-non-secure", "several-non-secure")
# Two cold Xen builds (minutes, when the real-Xen tier has not made them) plus six boots; the
# first test to ask waits for all of it.
TIER_TIMEOUT_S = 1800

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.xen,
    pytest.mark.linux,
    pytest.mark.timeout(TIER_TIMEOUT_S),
]


@pytest.fixture(scope="session")
def kernel() -> linux.GuestKernel:
    if toolchain.missing():
        pytest.skip(SKIP_REASON)
    gone = linux.missing()
    if gone:
        pytest.skip(f"the Linux tier needs {', '.join(gone)}: run scripts/setup-system.sh")
    return linux.prepare_guest(default_build_dir())


def _xen(profile: str) -> XenImage:
    archive = XEN_SOURCES / XENS[profile]
    if not archive.is_file():
        pytest.skip(f"no {archive}: the Linux tier needs ../shared/xen (or HIL_XEN_SOURCES)")
    build = build_xen(toolchain.locate(), default_build_dir(), XenSource.of(archive))
    return XenImage(build.image, XenOptions.of_build(build.kconfig()), build.config)


@pytest.fixture(scope="session")
def boots(
    kernel: linux.GuestKernel,
    firmware: Firmware,
    tmp_path_factory: pytest.TempPathFactory,
    worker_id: str,
) -> dict[tuple[str, str], dict]:
    """Each (Xen profile, scenario) booted once for the session, shared by xdist workers."""

    def boot_all(shared: Path) -> list[dict[str, Any]]:
        results = []
        for profile in XENS:
            xen = _xen(profile)
            for name in SCENARIOS:
                scenario = load_scenario(SCENARIO_DIR / f"{name}.toml")
                work = shared / profile / name
                fb = make_bundle(firmware, scenario, work / "bundle", xen=xen)
                boot = boot_linux(fb, kernel, firmware.toolchain.qemu, work / "qemu")
                results.append({"key": [profile, name], "lines": list(boot.lines)})
        return results

    booted = once_per_session(tmp_path_factory, worker_id, "linux-guest", boot_all)
    return {tuple(r["key"]): r for r in booted}  # type: ignore[misc]


def _boot(boots: dict, profile: str, name: str) -> LinuxBoot:
    lines = tuple(boots[profile, name]["lines"])
    return LinuxBoot(lines, parse_linux(lines), None)


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("profile", list(XENS))
def test_the_driver_registers_what_the_oracle_predicts(
    boots: dict, profile: str, name: str
) -> None:
    scenario = load_scenario(SCENARIO_DIR / f"{name}.toml")
    boot = _boot(boots, profile, name)
    assert boot.check(expect_linux(scenario, profile)) == []
    # Not vacuous: the driver came up and listed SPs from the scenario, plus its host entry.
    assert boot.view is not None and not boot.view.unsupported
    assert any(d.partition_id & 0x8000 for d in boot.view.devices)


def test_xen_dropped_the_non_secure_ids_before_linux_saw_them(boots: dict) -> None:
    for profile in XENS:
        view = _boot(boots, profile, "several-non-secure").view
        assert view is not None
        assert all(d.partition_id & 0x8000 or d.partition_id == 1 for d in view.devices)


def test_a_wrong_expectation_fails_with_a_readable_diff(boots: dict) -> None:
    observed = _boot(boots, "xen-4.22", "all-secure").view
    assert observed is not None
    # A wrong oracle: all-secure booted, one-non-secure's list expected.
    wrong = expect_linux(load_scenario(SCENARIO_DIR / "one-non-secure.toml"), "xen-4.22")
    diff = check_linux(wrong, observed)
    assert diff[:2] == ["--- expected (oracle)", "+++ observed (Linux)"]
    added = [line.split()[1] for line in diff if line.startswith("+partition")]
    assert added == ["id=0x8002", "id=0x8003"]
    assert not [line for line in diff if line.startswith("-partition")]


def test_the_guest_reports_the_firmware_version_each_xen_offers(boots: dict) -> None:
    versions = {p: _boot(boots, p, "all-secure").view for p in XENS}
    assert {p: (str(v.driver), str(v.firmware)) for p, v in versions.items() if v} == {
        "xen-4.21": ("1.2", "1.1"),
        "xen-4.22": ("1.2", "1.2"),
    }


def test_the_driver_came_from_the_modules_the_init_loaded(boots: dict) -> None:
    lines = _boot(boots, "xen-4.22", "all-secure").lines
    # Debian builds the driver as modules: without the insmod in /init there is no driver line.
    assert not [line for line in lines if "insmod" in line and "failed" in line]
    assert any("ARM FF-A: Driver version" in line for line in lines)


def test_the_guest_is_prepared_once_and_names_its_kernel(kernel: linux.GuestKernel) -> None:
    again = linux.prepare_guest(default_build_dir())
    assert again == kernel
    assert kernel.package.startswith("debian:linux-binary-") and kernel.release in kernel.package
    assert kernel.image.read_bytes()[0x38:0x3C] == linux.ARM64_MAGIC
    assert kernel.initrd.read_bytes()[:6] == b"070701"


def test_a_missing_kernel_names_the_setup_script(tmp_path: Path) -> None:
    with pytest.raises(linux.LinuxSourceError, match=r"setup-system\.sh"):
        linux.prepare_guest(tmp_path, tmp_path / "nope", tmp_path / "bb")


# -- hil run on a board with guest = "linux" (two boots: the boots above are not hil run's) --


def test_hil_run_boots_the_linux_guest_and_a_wrong_profile_fails_with_its_diff(
    kernel: linux.GuestKernel, tmp_path: Path
) -> None:
    archive = XEN_SOURCES / XENS["xen-4.22"]
    if not archive.is_file():
        pytest.skip(f"no {archive}: the Linux tier needs ../shared/xen (or HIL_XEN_SOURCES)")
    lab = tmp_path / "lab.toml"
    lab.write_text(
        f'boards_dir = "{BOARDS_DIR}"\nresults_dir = "{tmp_path / "results"}"\n'
        'boot_attempts = 1\n[[board]]\nname = "linux0"\ntype = "qemu-virt"\n'
        f'xen_profile = "xen-4.22"\nxen_src = "{archive}"\npower = {{ backend = "qemu" }}\n'
        'guest = "linux"\n'
    )
    argv = ["run", "--lab", str(lab), "--scenario", "one-non-secure"]

    def case() -> tuple[dict, Path]:
        run_dir = (tmp_path / "results" / "latest").resolve()
        (found,) = json.loads((run_dir / "summary.json").read_text())["run"]["cases"]
        return found, run_dir / "linux0" / "one-non-secure"

    assert main(argv) == 0
    passed, case_dir = case()
    assert (passed["verdict"], passed["message"]) == ("pass", "behaves as xen-4.22")
    assert [s["name"] for s in passed["stages"]][-2:] == ["ffa", "linux"]
    assert passed["provenance"]["linux:release"] == kernel.release
    # The Linux guest was what ran, judged from its own lines (not the probe's).
    ns = (case_dir / "ns.raw").read_bytes()
    assert b"HILLINUX end devices=2" in ns and b"HILPROBE" not in ns

    # The same boot judged against Xen 4.21's behaviour: Xen's lines and the driver's differ.
    assert main([*argv, "--expect-profile", "xen-4.21"]) == 1
    failed, case_dir = case()
    assert failed["verdict"] == "fail"
    diff = (case_dir / "diff.txt").read_text().splitlines()
    assert diff[:2] == ["--- expected (xen-4.21)", "+++ observed"]
    assert "-HILLINUX version driver=1.2 firmware=1.1" in diff
    assert "+HILLINUX version driver=1.2 firmware=1.2" in diff
    assert failed["diff"] == diff
    junit = (case_dir.parents[1] / "junit.xml").read_text()
    assert "+HILLINUX version driver=1.2 firmware=1.2" in junit
