"""`hil run` on a qemu-virt board hil launches: real TF-A + test SPMC + the probe as BL33, checked
against the oracle's "none" profile; with a lab-given Xen, the QEMU boot it would use (path A)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hil.boards.platform import bundle_for_board
from hil.boards.qemu import QemuBoard
from hil.cli import main
from hil.emulator.xen_boot import DOM0_ADDR
from hil.firmware import toolchain
from hil.firmware.bundle import PROBE_IMAGE
from hil.lab import load_lab
from hil.scenario import load_scenario
from hil.session import BoardSession
from tests.firmware.conftest import REPO, SKIP_REASON
from tests.labs import BOARDS_DIR

pytestmark = pytest.mark.qemu

SCENARIOS = ["all-secure", "one-non-secure", "fpi-size-4096", "count-64", "guest-v1-2", "zero-sps"]


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    if toolchain.missing():
        pytest.skip(SKIP_REASON)


def qemu_lab(directory: Path, extra: str = "") -> Path:
    lab = directory / "lab.toml"
    lab.write_text(
        f'boards_dir = "{BOARDS_DIR}"\nresults_dir = "{directory / "results"}"\n'
        "boot_attempts = 1\n[[board]]\n"
        'name = "qemu0"\ntype = "qemu-virt"\nxen_profile = "none"\n'
        'power = { backend = "qemu" }\ndeploy = { backend = "qemu" }\n' + extra
    )
    return lab


def run_cases(lab: Path, *argv: str) -> tuple[int, dict[str, dict]]:
    code = main(["run", "--lab", str(lab), "--board", "qemu0", *argv])
    run_dir = (lab.parent / "results" / "latest").resolve()
    cases = json.loads((run_dir / "summary.json").read_text())["run"]["cases"]
    return code, {c["scenario"]: {**c, "dir": run_dir} for c in cases}


def test_every_scenario_gives_the_none_profiles_answers(tmp_path: Path) -> None:
    code, cases = run_cases(qemu_lab(tmp_path), *(f"--scenario={s}" for s in SCENARIOS))
    assert code == 0
    assert set(cases) == set(SCENARIOS)
    for name, case in cases.items():
        assert case["verdict"] == "pass", (name, case["message"])
        ns = (case["dir"] / case["artifacts"]["console:ns:raw"]).read_bytes()
        secure = (case["dir"] / case["artifacts"]["console:secure:raw"]).read_bytes()
        # Every byte from the first: QEMU runs only once both consoles are connected.
        assert ns.startswith(b"NOTICE:  Booting Trusted Firmware"), name
        assert b"HILPROBE end" in ns, name
        assert secure.startswith(b"HIL test SPMC v1 "), name
        assert b"\nSPMC: 0x84000068 " in secure, name  # the SPMC's call log


def test_the_probe_sees_the_spmc_not_xen(tmp_path: Path) -> None:
    lab = qemu_lab(tmp_path)
    code, cases = run_cases(lab, "--scenario=one-non-secure", "--expect-profile=xen-4.22")
    assert code == 1
    assert cases["one-non-secure"]["verdict"] == "fail"
    assert "differ from xen-4.22" in cases["one-non-secure"]["message"]


def test_a_lab_given_xen_boots_path_a_with_the_probe_as_dom0(tmp_path: Path) -> None:
    xen = tmp_path / "xen"
    xen.write_bytes(b"\x00" * 4096)  # stands in for a Xen image: only its placement is checked
    board = load_lab(qemu_lab(tmp_path, f'xen_image = "{xen}"\n')).board("qemu0")
    scenario = load_scenario(REPO / "firmware" / "scenarios" / "all-secure.toml")
    with BoardSession(board, tmp_path / "s") as session:
        bundle = bundle_for_board(scenario, board, tmp_path / "bundle")
        session.deployer.deploy(bundle.directory)
        power = session.power
        assert isinstance(power, QemuBoard)
        machine = power.machine()
        config = machine.config
        argv = machine.argv()
        machine.close()
    probe = bundle.path(PROBE_IMAGE)
    assert bundle.sha256["xen"] and f"loader,file={probe},addr={DOM0_ADDR:#x},force-raw=on" in argv
    assert argv[argv.index("-dtb") + 1] == str(config.dtb)
    assert "-S" not in argv
    urls = list(session.consoles.values())
    serials = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-serial"]
    assert [f"socket://{s.split(':', 1)[1].split(',')[0]}" for s in serials] == urls
    assert all(s.endswith(",server=on,wait=on") for s in serials)

    def fdtget(node: str, prop: str, kind: str = "s") -> str:
        argv = ["fdtget", "-t", kind, str(config.dtb), node, prop]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()

    module = f"/chosen/module@{DOM0_ADDR:x}"
    size = probe.stat().st_size
    assert fdtget(module, "reg", "x").split() == ["0", f"{DOM0_ADDR:x}", "0", f"{size:x}"]
