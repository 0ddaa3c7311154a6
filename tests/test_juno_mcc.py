"""Juno's MCC deploy (hil.boards.juno) against a simulated MCC on a TCP serial port with a
directory as its mass storage: the whole sequence, and each step's failure as one infra line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.backend import BackendSpec
from hil.boards.juno import DOM0_ADDR, WITH_XEN, HostMassStorage, MccDeployer, images_txt
from hil.bundle import write_bundle
from hil.deploy import DEPLOY
from hil.errors import ConfigError, InfraError
from hil.scenario import load_scenarios
from tests.mcc_sim import DirectoryStorage, SimulatedMcc, wait_for

IMAGES_TXT = "SITE1/HBI0262E/images.txt"
LISTING = """TITLE: Versatile Express Images Configuration File
[IMAGES]
TOTALIMAGES: 2
NOR0UPDATE: AUTO
NOR0ADDRESS: 0x00000000
NOR0FILE: \\SOFTWARE\\fip.bin
NOR0LOAD: 00000000
NOR0ENTRY: 00000000
NOR1UPDATE: AUTO
NOR1ADDRESS: 0x03EC0000
NOR1FILE: \\SOFTWARE\\bl1.bin
NOR1LOAD: 00000000
NOR1ENTRY: 00000000
"""


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    (images / "images.txt").write_text(LISTING)
    (images / "fip.bin").write_bytes(b"FIP" * 1000)
    (images / "bl1.bin").write_bytes(b"BL1" * 100)
    roles = {"images_txt": "images.txt", "fip": "fip.bin", "bl1": "bl1.bin"}
    (scenario,) = load_scenarios(names=["one-non-secure"])
    files = {role: images / name for role, name in roles.items()}
    return write_bundle(scenario, "juno-r2", tmp_path / "bundle", files).directory


def deployer(sim: SimulatedMcc, storage: DirectoryStorage, **options) -> MccDeployer:
    timeouts = {"prompt_timeout": 2.0, "usb_timeout": 2.0, "poll_s": 0.05}
    return MccDeployer("juno0", sim.url, storage, images_txt=IMAGES_TXT, **{**timeouts, **options})


def test_a_bundle_reaches_the_nor_through_the_mcc(tmp_path: Path, bundle: Path) -> None:
    card = tmp_path / "card"
    card.mkdir()
    sim = SimulatedMcc(card, IMAGES_TXT)
    storage = DirectoryStorage(sim)
    deployer(sim, storage).deploy(bundle)
    assert wait_for(sim.rebooted)
    assert sim.commands == ["usb_on", "reboot"]
    assert storage.unmounts == 1 and not storage.mounted  # unmounted before the reboot
    # What the MCC flashed is the bundle's bytes, found through the images.txt hil copied.
    assert sim.flashed == {
        "\\SOFTWARE\\fip.bin": (bundle / "fip.bin").read_bytes(),
        "\\SOFTWARE\\bl1.bin": (bundle / "bl1.bin").read_bytes(),
    }
    sim.close()


@pytest.mark.parametrize(
    ("mode", "storage_kw", "expected"),
    [
        (
            "late",
            {},
            "board 'juno0': MCC deploy: interrupt autorun: the MCC says 'In reset': the interrupt "
            "came too late; the MCC's last line: 'In reset'",
        ),
        (
            "mute",
            {},
            "board 'juno0': MCC deploy: interrupt autorun: no 'Cmd>' prompt within 0.5 s",
        ),
        (
            "no-usb",
            {},
            "board 'juno0': MCC deploy: wait for mass storage: no filesystem labelled 'JUNO' "
            "within 0.5 s",
        ),
        (
            "normal",
            {"fail_mount": True},
            "board 'juno0': MCC deploy: mount: /dev/disk/by-label/JUNO: mount: "
            "/dev/disk/by-label/JUNO: wrong fs type, bad option, bad superblock",
        ),
    ],
    ids=["in-reset", "no-prompt", "no-mass-storage", "mount-fails"],
)
def test_each_failed_step_is_one_infra_line_naming_it(
    tmp_path: Path, bundle: Path, mode: str, storage_kw: dict, expected: str
) -> None:
    card = tmp_path / "card"
    card.mkdir()
    sim = SimulatedMcc(card, IMAGES_TXT, mode)
    storage = DirectoryStorage(sim, **storage_kw)
    short = {"mute": {"prompt_timeout": 0.5}, "no-usb": {"usb_timeout": 0.5}}.get(mode, {})
    with pytest.raises(InfraError) as err:
        deployer(sim, storage, **short).deploy(bundle)
    assert str(err.value) == expected
    assert not sim.rebooted.is_set() and not storage.mounted
    assert not (card / IMAGES_TXT).exists()  # nothing half-copied onto the card
    sim.close()


def test_a_bundle_missing_a_listed_image_is_refused_before_the_board_is_touched(
    tmp_path: Path, bundle: Path
) -> None:
    (tmp_path / "images" / "images.txt").write_text(LISTING + "NOR2FILE: \\SOFTWARE\\xen\n")
    (scenario,) = load_scenarios(names=["one-non-secure"])
    files = {"images_txt": tmp_path / "images" / "images.txt", "fip": bundle / "fip.bin"}
    broken = write_bundle(scenario, "juno-r2", tmp_path / "broken", files).directory
    sim = SimulatedMcc(tmp_path, IMAGES_TXT)
    with pytest.raises(InfraError) as err:
        deployer(sim, DirectoryStorage(sim)).deploy(broken)
    assert str(err.value) == (
        "board 'juno0': MCC deploy: copy: images.txt names \\SOFTWARE\\bl1.bin, which the "
        "bundle lacks"
    )
    assert sim.commands == []
    sim.close()


def test_an_unreachable_mcc_console_is_one_line(tmp_path: Path, bundle: Path) -> None:
    sim = SimulatedMcc(tmp_path, IMAGES_TXT)
    sim.close()  # nothing listens on its port any more
    with pytest.raises(InfraError) as err:
        deployer(sim, DirectoryStorage(sim)).deploy(bundle)
    assert str(err.value).startswith(f"board 'juno0': MCC deploy: open MCC console: {sim.url}: ")


def test_the_lab_table_is_checked(tmp_path: Path) -> None:
    def create(options: dict):  # type: ignore[no-untyped-def]
        spec = BackendSpec(
            tmp_path / "lab.toml", "board 'juno0'", "deploy.", options, "juno0", "mcc"
        )
        return DEPLOY.create(spec)

    made = create({"console": "/dev/ttyUSB2"})
    assert isinstance(made, MccDeployer) and made.label == "JUNO" and made.reboot
    with pytest.raises(ConfigError) as err:
        create({"label": "X"})
    assert str(err.value).endswith("lab.toml: board 'juno0': field 'deploy.console': missing")
    with pytest.raises(ConfigError) as err:
        create({"console": "/dev/ttyUSB2", "images_txt": "../etc/images.txt"})
    assert "field 'deploy.images_txt': expected a path inside the card" in str(err.value)


def test_the_host_side_finds_the_card_by_label_and_runs_the_labs_argv(tmp_path: Path) -> None:
    by_label, card = tmp_path / "by-label", tmp_path / "sdb1"
    by_label.mkdir()
    card.write_bytes(b"FAT")
    mount_dir = tmp_path / "mnt"
    storage = HostMassStorage(
        "juno0", mount_dir, ("cp", "{device}", "{dir}"), ("rm", "-r", "{dir}"), by_label
    )
    assert storage.find("JUNO") is None  # not (yet) seen by the host
    (by_label / "JUNO").symlink_to(card)
    device = storage.find("JUNO")
    assert device == card
    assert storage.mount(device) == mount_dir
    assert (mount_dir / "sdb1").read_bytes() == b"FAT"  # {device} and {dir} were substituted
    storage.unmount(mount_dir)
    assert not mount_dir.exists()
    failing = HostMassStorage("juno0", mount_dir, ("false",), ("true",), by_label)
    with pytest.raises(InfraError) as err:
        failing.mount(device)
    assert str(err.value) == "board 'juno0': MCC deploy: mount: command 'false' exited 1"


def test_a_xen_bundle_puts_dom0_in_nor_between_the_fip_and_bl1(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (images / "images.txt").write_text(images_txt(WITH_XEN), newline="")
    contents = {"fip.bin": b"FIP" * 1000, "probe.bin": b"DOM0" * 100, "bl1.bin": b"BL1" * 100}
    for name, data in contents.items():
        (images / name).write_bytes(data)
    roles = {
        "images_txt": "images.txt",
        "fip": "fip.bin",
        "probe_image": "probe.bin",
        "bl1": "bl1.bin",
    }
    files = {role: images / name for role, name in roles.items()}
    (scenario,) = load_scenarios(names=["one-non-secure"])
    bundle = write_bundle(scenario, "juno-r2", tmp_path / "bundle", files).directory
    card = tmp_path / "card"
    card.mkdir()
    sim = SimulatedMcc(card, IMAGES_TXT)
    deployer(sim, DirectoryStorage(sim)).deploy(bundle)
    assert wait_for(sim.rebooted)
    sim.close()
    # What the MCC wrote where: dom0 at the address Xen's /chosen gives (NOR base + offset).
    assert sim.nor == {0x0: contents["fip.bin"], 0x02000000: contents["probe.bin"],
                       0x03EC0000: contents["bl1.bin"]}  # fmt: skip
    assert sim.read_nor(DOM0_ADDR, 400) == contents["probe.bin"]
