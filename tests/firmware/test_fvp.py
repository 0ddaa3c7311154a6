"""FVP Base RevC: the bundle hil builds, checked statically (the FIP's contents, the SPMC and
probe inside the FVP's memory map, Xen's /chosen in the DTB), and `hil run` launching a stand-in
model (tests/fvp_standin.py) that checks hil's argv, announces its own ports and serves the boot.
No real FVP runs here: README "Real hardware" says what only one can confirm."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hil.boards import fvp
from hil.boards.platform import bundle_for_board
from hil.cli import main
from hil.firmware import toolchain
from hil.firmware.build import FVP, default_build_dir
from hil.lab import load_lab
from hil.scenario import load_scenario
from tests.firmware.conftest import REPO, SKIP_REASON
from tests.labs import BOARDS_DIR, toml_value

pytestmark = pytest.mark.qemu  # the QEMU tier's tools build the FVP firmware too

# TF-A 2.12.1's FVP memory map (plat/arm/board/fvp/include/platform_def.h, arm_def.h).
SPMC_REGION = (0x06000000, 0x06000000 + 0x200000)  # PLAT_ARM_SPMC_BASE, PLAT_ARM_SPMC_SIZE
NS_DRAM = (0x80000000, 0x100000000)
FAST = {"bl1": 10, "bl2": 5, "bl31": 5, "spmc": 5, "probe": 10}


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    if toolchain.missing():
        pytest.skip(SKIP_REASON)


def model(directory: Path, mode: str = "boot") -> Path:
    """An executable standing in for the model, in ``mode`` (see tests/fvp_standin.py)."""
    path = directory / f"FVP_Base_RevC-2xAEMvA-{mode}"
    path.write_text(
        f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m tests.fvp_standin "
        f'--standin-mode={mode} -- "$@"\n'
    )
    path.chmod(0o755)
    return path


def fvp_lab(
    directory: Path, boards: dict[str, dict], boot_attempts: int = 1, timeouts: dict = FAST
) -> Path:
    lines = [
        f"boards_dir = {toml_value(str(BOARDS_DIR))}",
        f"results_dir = {toml_value(str(directory / 'results'))}",
        f"boot_attempts = {boot_attempts}",
    ]
    for name, power in boards.items():
        lines += [
            "[[board]]",
            f'name = "{name}"\ntype = "fvp-base-revc"\nxen_profile = "none"',
            f"timeouts = {toml_value(timeouts)}",
            f"power = {toml_value({'backend': 'fvp', 'workdir': str(directory / name), **power})}",
        ]
    path = directory / "lab.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(lab: Path, *boards: str) -> tuple[int, dict[str, dict]]:
    argv = ["run", "--lab", str(lab), "--scenario", "one-non-secure"]
    code = main([*argv, *(f"--board={b}" for b in boards)])
    run_dir = (lab.parent / "results" / "latest").resolve()
    cases = json.loads((run_dir / "summary.json").read_text())["run"]["cases"]
    return code, {c["board"]: {**c, "dir": run_dir} for c in cases}


# -- the bundle, statically ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def xen_bundle(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("fvp-bundle")
    xen = directory / "xen"
    xen.write_bytes(b"\x00" * 4096)  # stands in for a Xen image: only its placement is checked
    lab = fvp_lab(directory, {"fvp0": {"model": "FVP_Base_RevC-2xAEMvA"}})
    text = lab.read_text().replace('xen_profile = "none"', 'xen_profile = "xen-4.22"')
    lab.write_text(text + f"xen_image = {toml_value(str(xen))}\n")
    board = load_lab(lab).board("fvp0")
    scenario = load_scenario(REPO / "firmware" / "scenarios" / "one-non-secure.toml")
    return bundle_for_board(scenario, board, directory / "bundle")


def fiptool() -> Path:
    return fvp._firmware(default_build_dir().resolve()).tfa.fiptool


def test_the_fip_carries_the_scenarios_spmc_its_manifest_and_the_xen_dtb(xen_bundle, tmp_path):
    files = xen_bundle.files
    info = subprocess.run(
        [fiptool(), "info", files["fip"]], capture_output=True, text=True, check=True
    ).stdout
    sizes = {
        m[2]: int(m[1], 16) for m in re.finditer(r"size=(0x[0-9A-F]+), cmdline=\"--([\w-]+)", info)
    }
    assert {"tb-fw", "soc-fw", "tos-fw", "tos-fw-config", "hw-config"} <= set(sizes)
    assert "nt-fw" not in sizes  # BL33 is preloaded by the model (--data), not in the FIP
    for role, entry in (("spmc_image", "tos-fw"), ("spmc_manifest_dtb", "tos-fw-config")):
        assert sizes[entry] == files[role].stat().st_size, entry
    subprocess.run([fiptool(), "unpack", "--out", tmp_path, files["fip"]], check=True)
    # The very SPMC image, with this scenario's blob in its window, is what BL2 loads as BL32.
    assert (tmp_path / "tos-fw.bin").read_bytes() == files["spmc_image"].read_bytes()
    assert (tmp_path / "hw-config.bin").read_bytes() == files["hw_config"].read_bytes()
    manifest = files["spmc_manifest_dts"].read_text()
    assert "load_address = <0x0 0x06000000>" in manifest  # FVP's BL32 base, not QEMU's


def nm(elf: Path) -> dict[str, int]:
    out = subprocess.run(
        [toolchain.locate().nm, elf], capture_output=True, text=True, check=True
    ).stdout
    return {f[2]: int(f[0], 16) for f in (line.split() for line in out.splitlines()) if len(f) == 3}


def test_spmc_and_probe_are_linked_inside_the_fvp_memory_map() -> None:
    fw = fvp._firmware(default_build_dir().resolve())
    spmc = nm(fw.spmc.path.with_suffix(".elf"))
    assert SPMC_REGION[0] == spmc["_start"] and spmc["__stacks_start"] < SPMC_REGION[1]
    probe = nm(fw.probe.path.with_suffix(".elf"))
    assert NS_DRAM[0] <= probe["_start"] < NS_DRAM[1]
    assert probe["_start"] == 0x84000000  # where the model's --data puts BL33
    assert FVP.spmc_base == SPMC_REGION[0]


def test_the_dtb_gives_xen_its_dom0_and_command_line(xen_bundle) -> None:
    dts = subprocess.run(
        ["dtc", "-I", "dtb", "-O", "dts", xen_bundle.files["hw_config"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    size = xen_bundle.files["probe_image"].stat().st_size
    chosen = dts[dts.index("chosen {") :]
    assert 'compatible = "multiboot,kernel\\0multiboot,module";' in chosen
    assert f"reg = <0x00 0x86000000 0x00 {size:#x}>;" in chosen
    assert "dtuart=serial0" in chosen and "dom0_max_vcpus=1" in chosen
    assert "serial0 = " in dts  # the alias dtuart names, from TF-A's FVP device tree
    assert "gic-v3" in dts or "arm,gic-v3" in dts


def test_the_model_argv_loads_bl1_fip_xen_and_dom0(xen_bundle) -> None:
    argv = fvp.model_argv(Path("/opt/FVP"), xen_bundle, ("bp.secure_memory=1",))
    files = xen_bundle.files
    assert argv[argv.index("--data") + 1] == f"cluster0.cpu0={files['xen']}@0x84000000"
    assert f"cluster0.cpu0={files['probe_image']}@0x86000000" in argv
    params = [argv[i + 1] for i, a in enumerate(argv) if a == "-C"]
    assert f"bp.secureflashloader.fname={files['bl1']}" in params
    assert f"bp.flashloader0.fname={files['fip']}" in params
    assert params[-1] == "bp.secure_memory=1"  # the lab's parameters come last: they win
    assert all(f"bp.terminal_{n}.start_telnet=0" in params for n in range(4))


# -- launching the stand-in ----------------------------------------------------------------------


def test_two_models_at_once_each_on_the_ports_it_announced(tmp_path: Path) -> None:
    boot = str(model(tmp_path))
    lab = fvp_lab(tmp_path, {"fvp0": {"model": boot}, "fvp1": {"model": boot}})
    code, cases = run(lab, "fvp0", "fvp1")
    assert code == 0, {b: c["message"] for b, c in cases.items()}
    ports = []
    for case in cases.values():
        assert case["verdict"] == "pass", case["message"]
        ns = (case["dir"] / case["artifacts"]["console:normal:raw"]).read_bytes()
        assert ns.startswith(b"NOTICE:  Booting Trusted Firmware") and b"HILPROBE end" in ns
        secure = (case["dir"] / case["artifacts"]["console:secure:raw"]).read_bytes()
        assert secure.startswith(b"HIL test SPMC")
        log = (case["dir"] / case["artifacts"]["process-log"]).read_text()
        ports.append(
            set(re.findall(r"terminal_\d: Listening for serial connection on port (\d+)", log))
        )
    assert len(ports[0]) == 4 and not ports[0] & ports[1]  # chosen by each model, never fixed


def test_with_xen_the_model_gets_xen_as_bl33_and_the_probe_as_dom0(tmp_path: Path) -> None:
    xen = tmp_path / "xen"
    xen.write_bytes(b"\x00" * 4096)  # the stand-in models Xen 4.22 once BL33 is not the probe
    lab = fvp_lab(tmp_path, {"fvp0": {"model": str(model(tmp_path))}})
    text = lab.read_text().replace('xen_profile = "none"', 'xen_profile = "xen-4.22"')
    lab.write_text(text + f"xen_image = {toml_value(str(xen))}\n")
    code, cases = run(lab, "fvp0")
    assert code == 0, cases["fvp0"]["message"]
    ns = (cases["fvp0"]["dir"] / cases["fvp0"]["artifacts"]["console:normal:raw"]).read_bytes()
    assert b"(XEN) ARM FF-A Mediator version" in ns


@pytest.mark.parametrize(
    ("mode", "power", "expected"),
    [
        (
            "crash",
            {},
            r"board 'fvp0': FVP model exited with 134; its last line: 'Error: simulation "
            r"aborted: internal error in cluster0.cpu0' \(in .*fvp.log\) \(boot: board 'fvp0': "
            r"stage '\w+': .*\)",
        ),
        (
            "silent",
            {"announce_timeout": 3},
            r"board 'fvp0': FVP model announced no terminal_0, terminal_1, terminal_2 within 3 s; "
            r"its last line: 'Info: FVP_Base_RevC-2xAEMvA \(stand-in\): waiting for a licence'.*",
        ),
        (
            "refuse",
            {},
            r"board 'fvp0': FVP model exited with 1 before announcing terminal_0, terminal_1, "
            r"terminal_2; its last line: 'Error: no licence available for FVP_Base_RevC-2xAEMvA'.*",
        ),
        (
            "boot",
            {"params": ["bp.no_such_parameter=1"]},  # the stand-in refuses it as a model does
            r"board 'fvp0': FVP model exited with 1 before announcing .*: \"Error: unknown "
            r"parameter 'bp.no_such_parameter'\".*",
        ),
    ],
    ids=["crash", "never-announces", "refuses-to-start", "unknown-parameter"],
)
def test_a_model_that_fails_is_one_infra_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str, power: dict, expected: str
) -> None:
    # Long stage timeouts: a dead model must end the boot at once, not when a stage times out.
    slow = dict.fromkeys(FAST, 60)
    lab = fvp_lab(tmp_path, {"fvp0": {"model": str(model(tmp_path, mode)), **power}}, 1, slow)
    started = time.monotonic()
    code, cases = run(lab, "fvp0")
    assert time.monotonic() - started < 30
    assert code == 3
    case = cases["fvp0"]
    assert case["verdict"] == "infra_error"
    assert re.fullmatch(expected, case["message"]), case["message"]
    assert "\n" not in case["message"]
    assert not [t for t in threading.enumerate() if t.name.startswith(("fvp-", "relay-"))]


def test_a_model_that_is_not_installed_is_one_line(tmp_path: Path, capsys) -> None:
    lab = fvp_lab(tmp_path, {"fvp0": {"model": str(tmp_path / "no-such-FVP")}})
    code, cases = run(lab, "fvp0")
    assert code == 3
    assert cases["fvp0"]["message"] == (
        f"board 'fvp0': FVP model {tmp_path / 'no-such-FVP'} is not installed on this machine "
        "(power.model in the lab file)"
    )


def test_a_bad_fvp_table_is_exit_2_before_anything_runs(tmp_path: Path, capsys) -> None:
    lab = fvp_lab(tmp_path, {"fvp0": {"model": "FVP", "params": ["-C bp.x=1"]}})
    assert main(["run", "--lab", str(lab), "--board", "fvp0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"hil: error: {lab}: board 'fvp0': field 'power.params[0]': expected NAME=VALUE "
        "(a -C parameter), got '-C bp.x=1'"
    ]
    assert not list(tmp_path.glob("results/*/summary.json"))  # no run, no report claiming one
