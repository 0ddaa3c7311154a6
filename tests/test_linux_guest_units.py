"""The Linux guest without booting it: its line format, the driver-view oracle, the check."""

from __future__ import annotations

import gzip
import lzma
import struct
import uuid
from pathlib import Path

import pytest

from hil.compare import Observation, compare_linux
from hil.evidence import EvidenceIncomplete, dom0_end, observe, read_boot
from hil.guest import LINUX
from hil.guest.linux import (
    APPLETS,
    INIT,
    S_CHR,
    S_DIR,
    S_LINK,
    CpioEntry,
    LinuxSourceError,
    initramfs_entries,
    kernel_image,
    newc_archive,
    prepare_guest,
    read_module,
)
from hil.guest.linux_log import Device, LinuxLogError, parse_linux
from hil.guest.linux_oracle import check_linux, expect_linux, host_id
from hil.scenario import SCENARIO_DIR, load_scenario
from hil.xen.messages import FFA_KEYS
from hil.xen.oracle import expect

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
    one = expect_linux(scenario("one-non-secure"), "xen-4.21")
    assert [d.partition_id for d in sorted(one.devices)] == [host_id("xen-4.21"), 0x8001]
    assert host_id("xen-4.22") == 1 and host_id("none") == 0
    empty = expect_linux(scenario("zero-sps"), "xen-4.21")
    assert empty.devices == () and not empty.unsupported


def test_under_xen_422_the_host_comes_from_xens_own_entry_once() -> None:
    # A v1.2 guest's nil-UUID list ends with its own entry (ffa_get_vm_partinfo): with no SPs
    # the list is not empty, and the driver does not add the host a second time (seen 7.3.4).
    zero = expect_linux(scenario("zero-sps"), "xen-4.22")
    assert zero.devices == (Device(1, uuid.UUID(int=0)),)
    several = expect_linux(scenario("all-secure"), "xen-4.22")
    assert [d.partition_id for d in several.devices].count(1) == 1


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


def read_newc(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """An independent reader of the newc format (name -> mode, data, rdev), up to the trailer."""
    out, at = {}, 0
    while True:
        assert data[at : at + 6] == b"070701", f"bad magic at {at}"
        f = [int(data[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = f[1], f[6], (f[9], f[10]), f[11]
        name = data[at + 110 : at + 110 + namesize - 1].decode()
        start = (at + 110 + namesize + 3) & ~3
        if name == "TRAILER!!!":
            assert len(data) % 4 == 0
            return out
        out[name] = (mode, data[start : start + size], rdev)
        at = (start + size + 3) & ~3


def test_the_initramfs_is_a_newc_archive_with_busybox_the_modules_and_the_init() -> None:
    modules = {"ffa-core": b"\x7fELFcore", "ffa-module": b"\x7fELFdriver!"}
    files = read_newc(newc_archive(initramfs_entries(b"BUSYBOX", modules)))
    assert files["init"] == (0o100755, INIT.encode(), (0, 0))
    assert files["bin/busybox"][1] == b"BUSYBOX"
    assert files["dev/console"] == (S_CHR | 0o600, b"", (5, 1))
    assert files["lib/modules"][0] == S_DIR | 0o755
    for applet in ("sh", "insmod", "poweroff"):
        assert files[f"bin/{applet}"] == (S_LINK | 0o777, b"busybox", (0, 0))
    assert files["lib/modules/ffa-module.ko"][1] == b"\x7fELFdriver!"
    # The bus module first: ffa-module needs ffa-core's symbols.
    assert files["lib/modules/order"][1] == b"ffa-core\nffa-module\n"
    assert "insmod" in APPLETS and "/lib/modules/order" in INIT


def test_a_kernel_with_the_driver_built_in_gets_no_modules() -> None:
    files = read_newc(newc_archive(initramfs_entries(b"BB", {})))
    assert files["lib/modules/order"][1] == b""
    assert not [name for name in files if name.endswith(".ko")]


def test_the_archive_is_the_same_bytes_for_the_same_inputs() -> None:
    entries = [CpioEntry("a", S_DIR | 0o755), CpioEntry("a/b", 0o100644, b"xyz")]
    assert newc_archive(entries) == newc_archive(list(entries))


IMAGE = bytes(0x38) + b"ARM\x64" + b"kernel text" * 10


def zboot(payload: bytes, kind: bytes) -> bytes:
    """An EFI zboot image as drivers/firmware/efi/libstub/zboot-header.S lays it out."""
    offset = 0x100
    header = struct.pack("<4s4sII8s32s", b"MZ\0\0", b"zimg", offset, len(payload), b"", kind)
    return header.ljust(offset, b"\0") + payload + b"\0" * 8


@pytest.mark.parametrize(
    "packed",
    [
        IMAGE,
        gzip.compress(mtime=0, data=IMAGE),
        zboot(gzip.compress(mtime=0, data=IMAGE), b"gzip"),
        zboot(lzma.compress(IMAGE, format=lzma.FORMAT_XZ), b"xz"),
    ],
    ids=["plain", "gzip", "zboot-gzip", "zboot-xz"],
)
def test_the_kernel_is_unpacked_to_the_raw_image_xen_boots(packed: bytes) -> None:
    assert kernel_image(packed, "vmlinuz") == IMAGE


@pytest.mark.parametrize(
    ("packed", "why"),
    [
        (b"\x7fELF" + bytes(100), "not an arm64 Linux Image"),
        (zboot(b"??", b"zstd"), "zstd compression is not supported"),
        (zboot(b"not gzip", b"gzip"), "corrupt gzip"),
        (zboot(gzip.compress(mtime=0, data=IMAGE), b"gzip")[:0x110], "past the file"),
    ],
    ids=["elf", "zstd", "corrupt", "truncated"],
)
def test_a_kernel_hil_cannot_boot_is_one_line_naming_the_file(packed: bytes, why: str) -> None:
    with pytest.raises(LinuxSourceError, match=why) as exc:
        kernel_image(packed, "my/vmlinuz")
    assert str(exc.value).startswith("my/vmlinuz: ") and "\n" not in str(exc.value)


def test_compressed_modules_are_unpacked_for_busybox_insmod(tmp_path: Path) -> None:
    elf = b"\x7fELF module"
    (tmp_path / "a.ko.xz").write_bytes(lzma.compress(elf, format=lzma.FORMAT_XZ))
    (tmp_path / "b.ko.gz").write_bytes(gzip.compress(mtime=0, data=elf))
    (tmp_path / "c.ko").write_bytes(elf)
    (tmp_path / "d.ko.zst").write_bytes(b"zstd")
    assert {read_module(tmp_path / n) for n in ("a.ko.xz", "b.ko.gz", "c.ko")} == {elf}
    with pytest.raises(LinuxSourceError, match=r"d\.ko\.zst: unknown module compression"):
        read_module(tmp_path / "d.ko.zst")


def own_kernel(tmp_path: Path, info: str) -> tuple[Path, Path]:
    kdir = tmp_path / "my-kernel"
    kdir.mkdir()
    (kdir / "vmlinuz").write_bytes(gzip.compress(mtime=0, data=IMAGE))
    (kdir / "kernel.json").write_text(info)
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"BB")
    return kdir, busybox


def test_a_labs_own_kernel_with_the_driver_built_in_is_prepared_without_modules(tmp_path) -> None:
    info = '{"release": "6.6.0-lab", "package": "lab:my-build-42"}'
    kdir, busybox = own_kernel(tmp_path, info)
    guest = prepare_guest(tmp_path / "build", kdir, busybox)
    assert guest.image.read_bytes() == IMAGE  # gunzipped once here, not by Xen at each boot
    files = read_newc(guest.initrd.read_bytes())
    assert files["lib/modules/order"][1] == b"" and files["bin/busybox"][1] == b"BB"
    assert guest.provenance() == {"linux:release": "6.6.0-lab", "linux:package": "lab:my-build-42"}
    assert prepare_guest(tmp_path / "build", kdir, busybox) == guest  # cached by input hash


def test_a_kernel_json_without_its_fields_is_one_line_naming_the_file(tmp_path) -> None:
    kdir, busybox = own_kernel(tmp_path, '{"release": "6.6"}')
    with pytest.raises(
        LinuxSourceError, match=r"kernel\.json: needs JSON with release and package"
    ):
        prepare_guest(tmp_path / "build", kdir, busybox)


# -- as hil run judges a Linux-guest board (hil.evidence, hil.compare) -------------------------

BANNER = b"NOTICE:  Booting Trusted Firmware\r\n"
XEN_LINES = b"(XEN) Xen version 4.22.0 (hil@hil) (gcc) debug=n Wed Dec  2 2026\r\n"
UNUSABLE = b"(XEN) ffa: Secure partition with id 0x0042 cannot be used\r\n"
GUEST = "".join(f"{line.rstrip()}\r\r\n" for line in CONSOLE[1:]).encode()
LINUX_BOOT = BANNER + XEN_LINES + UNUSABLE + b"[    0.000000] Booting Linux\r\n" + GUEST


def judge_linux(tmp_path: Path, data: bytes) -> Observation:
    """What a check of a Linux-guest board judges in ``data`` (the normal console's capture):
    the window up to dom0's end line, as EvidenceCheck takes it."""
    raw = tmp_path / "ns.raw"
    raw.write_bytes(data)
    end = dom0_end(raw, "ns", 0, None, LINUX)
    return observe(read_boot(raw, "ns", 0, end), "ns", guest=LINUX)


def test_a_check_judges_xens_lines_and_the_guests_up_to_its_end_line(tmp_path: Path) -> None:
    relayed = b"(d1) HILLINUX partition dev=x partition_id=0x8009 uuid=" + SP1.encode() + b"\r\n"
    after = b"HILLINUX partition dev=late partition_id=0x8007 uuid=" + SP1.encode() + b"\r\n"
    seen = judge_linux(tmp_path, LINUX_BOOT.replace(b"[    0", relayed + b"[    0") + after)
    assert seen.xen_lines == ["ffa: Secure partition with id 0x0042 cannot be used"]
    # A domU's relayed line is not dom0's; what came after the end line is not in the boot.
    assert seen.linux == parse_linux(CONSOLE)
    # A probe board reading the same capture has no Linux view (and no probe transcript).
    with pytest.raises(EvidenceIncomplete, match="probe's transcript is incomplete"):
        observe(read_boot(tmp_path / "ns.raw", "ns", 0), "ns")


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda b: b.replace(b"HILLINUX partition dev=arm-ffa-1", b"", 1), "1 partition lines"),
        (lambda b: b.replace(b"partition_id=0x8001", b"partition_id=0x8\xff01"), "unreadable"),
        (lambda b: b.replace(b"0x8001 uuid", b"0x80Z1 uuid"), "bad partition_id"),
        (lambda b: b.replace(b"-0002a5d5c51b\r\r\n", b"-0002a5d5c51b"), "glued together"),
        (lambda b: b[: b.rfind(b"HILLINUX end")], "did not finish"),
        (lambda b: b.replace(b"HILLINUX version", b"HILLINUX versoin"), "unknown line"),
    ],
)
def test_a_damaged_or_missing_guest_line_is_not_judged(tmp_path: Path, damage, why) -> None:
    # Not judged means an infra error, retried: never a PASS or FAIL on lines that lie.
    with pytest.raises(EvidenceIncomplete, match=why):
        judge_linux(tmp_path, damage(LINUX_BOOT))


def test_a_guest_whose_driver_module_did_not_load_is_not_judged(tmp_path: Path) -> None:
    # A lab's kernel whose modules do not load (built for another kernel): the driver never
    # ran, so "driver=none" and no devices say nothing about Xen or the firmware. Judged, it
    # was a FAIL blaming them; it is the guest's fault, not judged (infra, exit 3).
    broken = (
        b"HILLINUX kmsg insmod ffa-core failed\r\r\n"
        b"HILLINUX kmsg insmod ffa-module failed\r\r\n"
        b"HILLINUX version driver=none firmware=none\r\r\nHILLINUX end devices=0\r\r\n"
    )
    boot = BANNER + XEN_LINES + UNUSABLE + b"[    0.000000] Booting Linux\r\n" + broken
    with pytest.raises(EvidenceIncomplete, match="insmod ffa-core failed"):
        judge_linux(tmp_path, boot)


def test_the_diff_reads_xens_lines_then_the_drivers_view(tmp_path: Path) -> None:
    seen = judge_linux(tmp_path, LINUX_BOOT)
    sc = scenario("one-non-secure")
    expected = expect("xen-4.22", sc.spmc_config(), sc.probe_plan())
    assert seen.linux is not None
    # The same Xen lines and view on both sides: no difference.
    same = Observation(_xen_ffa_lines(expected), seen.transcript, seen.linux)
    assert compare_linux(expected, seen.linux, same) == []
    diff = compare_linux(expected, expect_linux(scenario("all-secure"), "xen-4.22"), same)
    assert diff[:2] == ["--- expected (xen-4.22)", "+++ observed"]
    assert [line for line in diff if line[:1] == "-" and line[:3] != "---"] == [
        "-HILLINUX version driver=1.2 firmware=1.2",
        "-HILLINUX partition id=0x8002 uuid=" + str(sc_uuid("all-secure", 0x8002)),
        "-HILLINUX partition id=0x8003 uuid=" + str(sc_uuid("all-secure", 0x8003)),
    ]
    assert "+HILLINUX version driver=1.1 firmware=1.2" in diff
    assert all(line[1:].startswith(("(XEN) ", "HILLINUX ")) for line in diff if line[:1] == " ")


def _xen_ffa_lines(expected) -> list[str]:
    return [line.text for line in expected.boot.lines if line.key in FFA_KEYS]


def sc_uuid(name: str, partition_id: int) -> uuid.UUID:
    return next(p.uuid for p in scenario(name).partitions if p.id == partition_id)


def test_a_labs_kernel_hil_cannot_boot_stops_the_run_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Checked before the first case (prepare_board): the lab's kernel is the lab's to fix
    # (exit 2); busybox missing is this machine's set-up (exit 3, naming the script).
    from hil.boards.builds import board_guest
    from hil.errors import ConfigError, InfraError
    from hil.lab import load_lab
    from tests.labs import BOARDS_DIR

    monkeypatch.setenv("HIL_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setenv("HIL_CACHE", str(tmp_path / "cache"))
    kdir = tmp_path / "mine"
    kdir.mkdir()
    (kdir / "vmlinuz").write_bytes(b"MZ not a kernel" * 8)
    (kdir / "kernel.json").write_text('{"release": "6.6-lab", "package": "lab:mine"}')
    lab = tmp_path / "lab.toml"
    lab.write_text(
        f'boards_dir = "{BOARDS_DIR}"\n[[board]]\nname = "l0"\ntype = "qemu-virt"\n'
        'xen_profile = "xen-4.22"\npower = { backend = "qemu" }\nxen_image = "xen"\n'
        'guest = "linux"\ndom0_kernel = "mine"\n'
    )
    board = load_lab(lab).board("l0")
    with pytest.raises(InfraError, match=r"^board 'l0': dom0 kernel: missing arm64 busybox .*"
                       r"setup-system\.sh$"):  # fmt: skip
        board_guest(board)
    busybox = tmp_path / "cache" / "busybox-static-arm64" / "bin" / "busybox"
    busybox.parent.mkdir(parents=True)
    busybox.write_bytes(b"\x7fELF")
    with pytest.raises(ConfigError) as err:
        board_guest(board)
    assert str(err.value) == (
        f"board 'l0': dom0 kernel: {kdir / 'vmlinuz'}: not an arm64 Linux Image "
        "(no ARM\\x64 magic at 0x38)"
    )
