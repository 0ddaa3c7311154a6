"""The Linux guest without booting it: its line format, the driver-view oracle, the check."""

from __future__ import annotations

import uuid

import pytest

from hil.guest.linux import INIT, initramfs_list
from hil.guest.linux_log import Device, LinuxLogError, parse_linux
from hil.guest.linux_oracle import check_linux, expect_linux, host_id
from hil.scenario import SCENARIO_DIR, load_scenario

SP1 = "486178e0-e7f8-11e3-bc5e-0002a5d5c51b"
CONSOLE = [
    "(XEN) ffa: Secure partition with id 0x0042 cannot be used",
    "HILLINUX version driver=1.1 firmware=1.2\r",
    "HILLINUX kmsg ARM FF-A: Driver version 1.1",
    "[    1.2] noise HILLINUX partition dev=arm-ffa-2 partition_id=0x8001 uuid=" + SP1,
    "HILLINUX partition dev=arm-ffa-1 partition_id=0x0001 uuid=" + str(uuid.UUID(int=0)),
    "HILLINUX end devices=2",
]


def scenario(name: str):
    return load_scenario(SCENARIO_DIR / f"{name}.toml")


def test_the_guest_lines_parse_into_its_view() -> None:
    view = parse_linux(CONSOLE)
    assert (str(view.driver), str(view.firmware), view.unsupported) == ("1.1", "1.2", False)
    assert sorted(view.devices) == [Device(1, uuid.UUID(int=0)), Device(0x8001, uuid.UUID(SP1))]
    assert view.kmsg == ("ARM FF-A: Driver version 1.1",)


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        (CONSOLE[:-1], "did not finish"),
        ([*CONSOLE[:-1], "HILLINUX end devices=3"], "2 partition lines"),
        (CONSOLE[2:], "without a version line"),
        ([CONSOLE[1], "HILLINUX partition partition_id=0x8001 uuid=zz", CONSOLE[-1]], "bad"),
        ([CONSOLE[1], "HILLINUX partition uuid=" + SP1, CONSOLE[-1]], "no partition_id"),
        ([CONSOLE[1], "HILLINUX surprise", CONSOLE[-1]], "unknown line"),
    ],
)
def test_incomplete_or_malformed_lines_are_an_error_not_a_view(lines, why) -> None:
    with pytest.raises(LinuxLogError, match=why):
        parse_linux(lines)


def test_the_oracle_adds_the_host_only_to_a_non_empty_list() -> None:
    one = expect_linux(scenario("one-non-secure"), "xen-4.22")
    assert [d.partition_id for d in sorted(one.devices)] == [host_id("xen-4.22"), 0x8001]
    assert host_id("xen-4.22") == 1 and host_id("none") == 0
    empty = expect_linux(scenario("zero-sps"), "xen-4.22")
    assert empty.devices == () and not empty.unsupported


def test_the_oracle_knows_the_driver_gives_up_when_xen_has_no_ffa() -> None:
    off = expect_linux(scenario("count-64"), "xen-4.22")
    assert off.unsupported and off.devices == ()
    assert check_linux(off, parse_linux(CONSOLE))[0] == "--- expected (oracle)"


def test_a_mismatch_is_a_unified_diff_naming_the_device() -> None:
    expected = expect_linux(scenario("all-secure"), "xen-4.22")
    observed = parse_linux(CONSOLE)  # only 0x8001 and the host
    diff = check_linux(expected, observed)
    missing = [line for line in diff if line.startswith("-partition")]
    assert [line.split()[1] for line in missing] == ["id=0x8002", "id=0x8003"]
    assert check_linux(observed, observed) == []


def test_the_initramfs_holds_busybox_and_the_init(tmp_path) -> None:
    listing = initramfs_list(tmp_path / "init", tmp_path / "busybox")
    assert f"file /init {tmp_path / 'init'} 0755 0 0" in listing
    assert "slink /bin/sh busybox" in listing
    assert "nod /dev/console 0600 0 0 c 5 1" in listing
    # Every line kind the init prints is one the parser reads.
    for kind in ("version", "kmsg", "partition", "end"):
        assert f"HILLINUX {kind}" in INIT
