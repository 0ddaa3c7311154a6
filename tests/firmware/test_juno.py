"""Juno r2 bundles, checked statically (no Juno here): TF-A PLAT=juno with the SPMD (hil's patch),
the lab's SCP firmware (a dummy the test makes) and the test SPMC in the FIP, the probe as BL33,
the SPMC and probe inside Juno's memory map, and an images.txt the MCC deploy can follow."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hil.boards import juno
from hil.boards.platform import bundle_for_board
from hil.cli import main
from hil.errors import ConfigError
from hil.firmware import toolchain
from hil.firmware.build import JUNO_HW_CONFIG_BASE
from hil.lab import load_lab
from hil.scenario import load_scenario
from tests.firmware.conftest import REPO, SKIP_REASON
from tests.firmware.test_real_xen import XEN_SOURCES, require_real_xen
from tests.labs import BOARDS_DIR, toml_value
from tests.mcc_sim import DirectoryStorage, SimulatedJuno

pytestmark = pytest.mark.qemu  # the QEMU tier's tools build the Juno firmware too

AP_SECURE_DRAM = (0xFF000000, 0x100000000)  # ARM_AP_TZC_DRAM1 on Juno (16 MB at the top of DRAM1)


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    if toolchain.missing():
        pytest.skip(SKIP_REASON)


PDU = {"backend": "pdu-command", "on": ["true"], "off": ["true"]}
MCC = {"backend": "mcc", "console": "socket://127.0.0.1:9"}


def juno_lab(
    directory: Path, extra: str = "", power: dict = PDU, deploy: dict = MCC, profile: str = "none"
) -> Path:
    path = directory / "lab.toml"
    path.write_text(
        f"boards_dir = {toml_value(str(BOARDS_DIR))}\n"
        f"results_dir = {toml_value(str(directory / 'results'))}\n[[board]]\n"
        f'name = "juno0"\ntype = "juno-r2"\nxen_profile = "{profile}"\n'
        f"power = {toml_value(power)}\ndeploy = {toml_value(deploy)}\n{extra}"
    )
    return path


@pytest.fixture(scope="module")
def scp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scp") / "scp_bl2.bin"
    path.write_bytes(b"HIL dummy SCP_BL2 " * 512)  # stands in for Arm's SCP firmware
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, scp: Path):  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("juno")
    board = load_lab(juno_lab(directory, f"scp_bl2 = {toml_value(str(scp))}\n")).board("juno0")
    scenario = load_scenario(REPO / "firmware" / "scenarios" / "one-non-secure.toml")
    return bundle_for_board(scenario, board, directory / "bundle")


def test_the_fip_carries_the_labs_scp_the_scenarios_spmc_and_the_probe(bundle, scp, tmp_path):
    files = bundle.files
    fiptool = juno._builds[next(iter(juno._builds))].tfa.fiptool
    subprocess.run([fiptool, "unpack", "--out", tmp_path, files["fip"]], check=True)
    assert (tmp_path / "scp-fw.bin").read_bytes() == scp.read_bytes()
    assert (tmp_path / "tos-fw.bin").read_bytes() == files["spmc_image"].read_bytes()
    assert (tmp_path / "tos-fw-config.bin").read_bytes() == files["spmc_manifest_dtb"].read_bytes()
    assert (tmp_path / "nt-fw.bin").read_bytes() == files["probe_image"].read_bytes()
    assert "load_address = <0x0 0xff200000>" in files["spmc_manifest_dts"].read_text()


def nm(elf: Path) -> dict[str, int]:
    out = subprocess.run(
        [toolchain.locate().nm, elf], capture_output=True, text=True, check=True
    ).stdout
    return {f[2]: int(f[0], 16) for f in (line.split() for line in out.splitlines()) if len(f) == 3}


def test_spmc_and_probe_are_linked_inside_junos_memory_map(bundle) -> None:
    fw = juno._builds[next(iter(juno._builds))]
    spmc = nm(fw.spmc.path.with_suffix(".elf"))
    assert AP_SECURE_DRAM[0] <= spmc["_start"] and spmc["__stacks_start"] < AP_SECURE_DRAM[1]
    assert spmc["_start"] == 0xFF200000  # the SPMC base hil's TF-A patch gives Juno
    assert nm(fw.probe.path.with_suffix(".elf"))["_start"] == 0xE0000000  # CSS BL33 base


def test_images_txt_puts_fip_and_bl1_in_nor_and_names_only_bundle_files(bundle, tmp_path):
    listing = bundle.files["images_txt"].read_bytes()
    assert b"NOR0FILE: \\SOFTWARE\\fip.bin\r\n" in listing
    assert b"NOR1ADDRESS: 0x03ec0000\r\nNOR1FILE: \\SOFTWARE\\bl1.bin\r\n" in listing
    deployer = juno.MccDeployer("juno0", "socket://127.0.0.1:9", storage=None)  # type: ignore[arg-type]
    card = deployer._files(bundle)  # what the MCC deploy would copy, checked before it runs
    assert card == {
        "SITE1/HBI0262E/images.txt": bundle.files["images_txt"],
        "SOFTWARE/fip.bin": bundle.files["fip"],
        "SOFTWARE/bl1.bin": bundle.files["bl1"],
    }


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "",
            "field 'scp_bl2': missing: the Juno's SCP firmware (scp_bl2.bin from Arm, not "
            "redistributable) goes into its FIP",
        ),
        ('scp_bl2 = "nowhere.bin"\n', "field 'scp_bl2': {d}/nowhere.bin is not a file"),
    ],
    ids=["no-scp", "scp-not-a-file"],
)
def test_hil_run_says_what_the_lab_must_give_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, expected: str
) -> None:
    lab = juno_lab(tmp_path, extra)
    assert main(["run", "--lab", str(lab), "--board", "juno0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hil: error: ")
    assert f"board 'juno0': {expected.format(d=tmp_path)}" in err[0]
    with pytest.raises(ConfigError):
        juno.prepare(load_lab(lab).board("juno0"))


@dataclass
class SimLab:
    """A simulated Juno and the lab tables that reach it (power, MCC deploy, consoles)."""

    sim: SimulatedJuno
    power: dict
    deploy: dict
    extra: str  # lab.toml lines: the consoles and short stage timeouts


@pytest.fixture
def sim_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimLab]:
    fw = juno._builds[next(iter(juno._builds))]
    card, power = tmp_path / "card", tmp_path / "power-on"
    card.mkdir()
    windows = (
        (fw.spmc.window_offset, fw.spmc.window_size),
        (fw.probe.window_offset, fw.probe.window_size),
    )
    sim = SimulatedJuno(card, "SITE1/HBI0262E/images.txt", fw.tfa.fiptool, windows, power)
    # The host side of the mass storage is the one thing replaced: the card is a directory.
    monkeypatch.setattr(juno, "HostMassStorage", lambda *a, **k: DirectoryStorage(sim.mcc))
    power_on = {**PDU, "on": ["touch", str(power)], "off_time": 0}  # the sim sees the file
    mcc = {**MCC, "console": sim.mcc.url, "reboot": False, "prompt_timeout": 5, "usb_timeout": 5}
    timeouts = {"bl1": 10, "bl2": 5, "bl31": 5, "spmc": 5, "xen": 10, "ffa": 5, "probe": 10}
    extra = f"consoles = {toml_value(sim.urls)}\ntimeouts = {toml_value(timeouts)}\n"
    try:
        yield SimLab(sim, power_on, mcc, extra)
    finally:
        sim.close()


RUN_TWO = ["--scenario=one-non-secure", "--scenario=zero-sps"]


def test_hil_run_deploys_through_the_mcc_and_judges_what_was_flashed(
    tmp_path: Path, bundle, scp: Path, sim_lab: SimLab
) -> None:
    extra = sim_lab.extra + f"scp_bl2 = {toml_value(str(scp))}\n"
    lab = juno_lab(tmp_path, extra, sim_lab.power, sim_lab.deploy)
    assert main(["run", "--lab", str(lab), *RUN_TWO]) == 0
    assert sim_lab.sim.mcc.commands == ["usb_on", "usb_on"]  # one MCC deploy per scenario
    assert sim_lab.sim.boots == 2  # each boot showed what the MCC had flashed for its scenario
    assert sim_lab.sim.xen_boots == 0


# -- Xen as BL33 -----------------------------------------------------------------------------------
# The Xen is the real-Xen tier's 4.22 (same source and options: its build is cached and shared).

XEN_422 = "xen-4.22.0.tar.xz"


def juno_xen_lab(directory: Path, scp: Path, extra: str = "", **kw) -> Path:  # type: ignore[no-untyped-def]
    xen = f"xen_src = {toml_value(str(XEN_SOURCES / XEN_422))}\n"
    return juno_lab(
        directory, f"scp_bl2 = {toml_value(str(scp))}\n{xen}{extra}", **kw, profile="xen-4.22"
    )


@pytest.fixture(scope="module")
def xen_bundle(tmp_path_factory: pytest.TempPathFactory, scp: Path):  # type: ignore[no-untyped-def]
    require_real_xen()
    directory = tmp_path_factory.mktemp("juno-xen")
    board = load_lab(juno_xen_lab(directory, scp)).board("juno0")
    scenario = load_scenario(REPO / "firmware" / "scenarios" / "one-non-secure.toml")
    return bundle_for_board(scenario, board, directory / "bundle")


def nor_entries(listing: bytes) -> dict[str, int]:
    """images.txt's file name -> NOR offset."""
    text = listing.decode()
    addresses = dict(re.findall(r"^NOR(\d+)ADDRESS: (\S+)\r$", text, re.MULTILINE))
    files = re.findall(r"^NOR(\d+)FILE: \\SOFTWARE\\(\S+)\r$", text, re.MULTILINE)
    return {name: int(addresses[n], 16) for n, name in files}


def test_with_xen_the_fip_boots_xen_with_hils_dtb_in_x0(xen_bundle, tmp_path: Path) -> None:
    files = xen_bundle.files
    fw = juno._builds[next(iter(juno._builds))]
    subprocess.run([fw.tfa.fiptool, "unpack", "--out", tmp_path, files["fip"]], check=True)
    assert (tmp_path / "nt-fw.bin").read_bytes() == files["xen"].read_bytes()  # BL33 is Xen
    assert b"Xen" in files["xen"].read_bytes()
    assert (tmp_path / "hw-config.bin").read_bytes() == files["hw_config"].read_bytes()
    assert (tmp_path / "tos-fw.bin").read_bytes() == files["spmc_image"].read_bytes()
    # x0: BL2 loads HW_CONFIG where fw_config says, and BL31 of a build with
    # ARM_LINUX_KERNEL_AS_BL33=1 hands that address to BL33.
    dts = subprocess.run(
        [toolchain.locate().dtc, "-I", "dtb", "-O", "dts", tmp_path / "fw-config.bin"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    hw_config = dts[dts.index("hw-config {") :]
    assert f"load-address = <0x00 {JUNO_HW_CONFIG_BASE:#x}>" in hw_config.split("};")[0]
    build = fw.tfa.fip.parents[3]  # <build dir>/tf-a-juno-<key>/out/juno/release/fip.bin
    log = (build.parent / f"{build.name}.log").read_text().splitlines()
    (make,) = [line.split() for line in log if line.startswith("$ ") and "PLAT=juno" in line]
    assert "ARM_LINUX_KERNEL_AS_BL33=1" in make


def test_with_xen_dom0_is_in_nor_where_xens_chosen_says(xen_bundle) -> None:
    files = xen_bundle.files
    entries = nor_entries(files["images_txt"].read_bytes())
    assert entries == {"fip.bin": 0x0, "probe.bin": 0x02000000, "bl1.bin": 0x03EC0000}
    assert all(offset % 0x40000 == 0 for offset in entries.values())  # own 256 KiB erase blocks
    probe = files["probe_image"]
    assert probe.name == "probe.bin"
    dts = subprocess.run(
        [toolchain.locate().dtc, "-I", "dtb", "-O", "dts", files["hw_config"]],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    # dom0's module is at NOR's base (0x08000000 as the AP sees it) + probe.bin's NOR offset.
    address = 0x08000000 + entries["probe.bin"]
    assert f"module@{address:x} {{" in dts
    assert f"reg = <0x00 {address:#x} 0x00 {probe.stat().st_size:#x}>;" in dts
    bootargs = re.search(r'xen,xen-bootargs = "([^"]*)"', dts)
    assert bootargs is not None
    args = bootargs[1].split()
    assert {"console=dtuart", "dtuart=serial0", "dom0_max_vcpus=1"} <= set(args)
    # Xen's console (dtuart=serial0) is SoC UART0, hil's normal console; its vGIC needs GICH/GICV.
    assert 'serial0 = "/uart@7ff80000";' in dts and "reg = <0x00 0x7ff80000 0x00 0x1000>;" in dts
    gic = (0x2C010000, 0x1000), (0x2C02F000, 0x2000), (0x2C04F000, 0x2000), (0x2C06F000, 0x2000)
    assert "reg = <" + " ".join(f"0x00 {a:#x} 0x00 {n:#x}" for a, n in gic) + ">;" in dts
    # The top 16 MB of DRAM1 is the secure world's: never RAM to Xen.
    assert "reg = <0x00 0x80000000 0x00 0x7f000000 0x08 0x80000000 0x01 0x80000000>;" in dts
    assert files["hw_config"].stat().st_size <= 0x8000  # PLAT_ARM_HW_CONFIG_SIZE
    # Every image fits before the next one.
    assert files["fip"].stat().st_size <= entries["probe.bin"]
    assert entries["probe.bin"] + probe.stat().st_size <= entries["bl1.bin"]
    deployer = juno.MccDeployer("juno0", "socket://127.0.0.1:9", storage=None)  # type: ignore[arg-type]
    assert deployer._files(xen_bundle)["SOFTWARE/probe.bin"] == probe


def test_an_image_too_big_for_its_nor_slot_is_named() -> None:
    sizes = {"fip.bin": 0x100000, "probe.bin": 0x1EC0001, "bl1.bin": 0x10000}
    assert juno.nor_overflow(juno.WITH_XEN, sizes) == (
        "probe.bin is 32243713 bytes, more than its 0x1ec0000-byte NOR slot at 0x0a000000"
    )
    assert juno.nor_overflow(juno.WITH_XEN, {**sizes, "probe.bin": 0x1000}) is None


def test_a_xen_too_big_for_the_fip_is_one_line(
    tmp_path: Path, scp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    xen = tmp_path / "xen"
    with xen.open("wb") as f:
        f.truncate(0x02000000)  # 32 MiB: with the rest of the FIP, over its slot before dom0
    extra = f"xen_image = {toml_value(str(xen))}\n"
    lab = juno_lab(tmp_path, f"scp_bl2 = {toml_value(str(scp))}\n{extra}", profile="xen-4.22")
    assert main(["run", "--lab", str(lab), "--board", "juno0", "--scenario=zero-sps"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"hil: error: {lab}: board 'juno0': field 'xen_image': Xen (33554432 ")
    assert "fip.bin is " in err[0] and "NOR slot at 0x08000000" in err[0]


def test_hil_run_boots_xen_on_the_simulated_juno_from_what_was_flashed(
    tmp_path: Path, xen_bundle, scp: Path, sim_lab: SimLab
) -> None:
    lab = juno_xen_lab(tmp_path, scp, sim_lab.extra, power=sim_lab.power, deploy=sim_lab.deploy)
    assert main(["run", "--lab", str(lab), *RUN_TWO]) == 0
    # Each boot found Xen as BL33, its DTB's dom0 module in flashed NOR, and the plan in it.
    assert sim_lab.sim.boots == 2 and sim_lab.sim.xen_boots == 2
