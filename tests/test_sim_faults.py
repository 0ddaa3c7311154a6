"""Each virtual-board fault, as a controller sees it on the console."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from hil.probe import parse_transcript
from hil.sim.boot_script import NO_BUNDLE
from hil.sim.faults import Fault, FaultKind, FaultSet, Garbage
from hil.sim.launcher import VirtualBoardProcess
from tests.sim_support import CHUNK, connect, last_boot, make_bundle, read_for, read_until

END = b"HILPROBE end\r\n"
BANNER = b"NOTICE:  Booting Trusted Firmware"


@pytest.fixture
def board(tmp_path: Path) -> Iterator[VirtualBoardProcess]:
    with VirtualBoardProcess.start("vbf", workdir=tmp_path / "board", stage_delay=0) as handle:
        yield handle


def deployed(board: VirtualBoardProcess, tmp_path: Path, url: str | None = None) -> serial.Serial:
    """A console client that has seen the undeployed boot, with a bundle deployed."""
    port = connect(url or board.console_url)
    read_until(port, NO_BUNDLE.encode())
    board.control.deploy(make_bundle(tmp_path / "bundle"))
    return port


def test_stall_stops_output_until_reset_for_the_first_boots_only(tmp_path: Path) -> None:
    faults = {"stall": {"stage": "xen", "boots": 1}}
    with (
        VirtualBoardProcess.start(
            "vbs", workdir=tmp_path / "b", stage_delay=0, faults=faults
        ) as vb,
        deployed(vb, tmp_path) as ns,
    ):
        vb.control.reset()
        stalled = read_for(ns, 0.5)
        assert b"NOTICE:  BL31: " in stalled
        assert b"(XEN)" not in stalled
        vb.control.reset()
        assert parse_transcript(last_boot(read_until(ns, END))).complete


@pytest.mark.parametrize("pattern", list(Garbage))
def test_garbage_is_injected_at_its_stage(
    board: VirtualBoardProcess, tmp_path: Path, pattern: Garbage
) -> None:
    fault = {"stage": "ffa", "pattern": pattern.value, "size": 64, "seed": 7}
    with deployed(board, tmp_path) as ns:
        board.control.set_faults({"garbage": fault})
        board.control.reset()
        capture = read_until(ns, END)
    boot = capture[capture.rfind(BANNER) :]
    _, after = boot.split(b"Using SMC Calling Convention v1.2\r\n")
    noise = Fault(FaultKind.GARBAGE, "ffa", size=64, pattern=pattern, seed=7).noise()
    assert after.startswith(noise + b"(XEN) ")
    assert board.control.sent_log().read_bytes().endswith(boot)


def test_disconnect_closes_the_client_and_output_is_lost_to_the_wire(
    board: VirtualBoardProcess, tmp_path: Path
) -> None:
    with deployed(board, tmp_path) as ns:
        board.control.set_faults({"disconnect": {"stage": "ffa"}})
        board.control.reset()
        with pytest.raises(serial.SerialException, match="disconnected"):
            read_until(ns, END)
    sent = board.control.sent_log().read_bytes()
    assert sent.endswith(END)
    with connect(board.console_url) as again:
        assert read_for(again, 0.3) == b""


def test_disconnect_with_hold_waits_for_the_next_client(
    board: VirtualBoardProcess, tmp_path: Path
) -> None:
    first = bytearray()
    with deployed(board, tmp_path) as ns:
        board.control.set_faults({"disconnect": {"stage": "ffa", "hold": True}})
        board.control.reset()
        with pytest.raises(serial.SerialException):
            while True:
                first += ns.read(CHUNK)
    time.sleep(0.2)
    assert not board.control.sent_log().read_bytes().endswith(END)
    with connect(board.console_url) as again:
        second = read_until(again, END)
    sent = board.control.sent_log().read_bytes()
    assert sent.endswith(bytes(first) + second)
    assert second.startswith(b"(XEN) ")


def test_spontaneous_reboot_happens_once(board: VirtualBoardProcess, tmp_path: Path) -> None:
    with deployed(board, tmp_path) as ns:
        board.control.set_faults({"reboot": {"stage": "dom0"}})
        board.control.reset()
        capture = read_until(ns, END)
        boots = capture.split(BANNER)[1:]
        assert len(boots) == 2
        assert b"(XEN) ARM FF-A" in boots[0] and b"LOADING DOMAIN 0" not in boots[0]
        board.control.reset()
        assert read_until(ns, END).count(BANNER) == 1


def test_reboot_loop_never_reaches_its_stage(board: VirtualBoardProcess, tmp_path: Path) -> None:
    with deployed(board, tmp_path) as ns:
        board.control.set_faults({"reboot_loop": {"stage": "xen"}})
        board.control.reset()
        looping = read_for(ns, 0.3)
        assert looping.count(BANNER) >= 3
        assert b"(XEN)" not in looping
        board.control.set_faults({})
        board.control.reset()
        assert parse_transcript(last_boot(read_until(ns, END))).complete


def test_slow_output_takes_its_time_per_byte(board: VirtualBoardProcess, tmp_path: Path) -> None:
    with (
        deployed(board, tmp_path) as ns,
        connect(board.console_url_for("secure")) as secure,
    ):
        board.control.set_faults({"slow": {"console": "secure", "ms_per_byte": 3}})
        start = time.monotonic()
        board.control.reset()
        line = read_until(secure, b"\r\n")
        elapsed = time.monotonic() - start
        read_until(ns, END)
    assert elapsed >= len(line) * 0.003


def test_fast_burst_floods_then_the_boot_goes_on(
    board: VirtualBoardProcess, tmp_path: Path
) -> None:
    size = 2 << 20
    with deployed(board, tmp_path) as ns:
        board.control.set_faults({"burst": {"stage": "xen", "size": size}})
        start = time.monotonic()
        board.control.reset()
        capture = read_until(ns, END, timeout=30)
        elapsed = time.monotonic() - start
    boot = capture[capture.rfind(BANNER) :]
    assert len(boot) > size
    assert parse_transcript(boot.decode().splitlines()).complete
    print(f"burst: {len(boot) / elapsed / 1e6:.1f} MB/s through socket://")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, b"(XEN)\xffabcde\r\nnext\r\n"),  # one byte in the middle, 0xff
        ({"offset": 0, "size": 2, "pattern": "nul"}, b"\0\0EN) abcde\r\nnext\r\n"),
        ({"offset": 9, "size": 5}, b"(XEN) abc\xff\xff\r\nnext\r\n"),  # never the line's end
    ],
)
def test_corrupt_replaces_bytes_of_one_line_and_keeps_its_length(spec, expected) -> None:
    (fault,) = FaultSet.parse({"corrupt": {"stage": "ffa", **spec}}, ("ffa",), ("ns",)).faults
    assert fault.kind is FaultKind.CORRUPT
    assert fault.corrupt(b"(XEN) abcde\r\nnext\r\n") == expected


def test_a_corrupted_line_reaches_the_console_damaged(
    board: VirtualBoardProcess, tmp_path: Path
) -> None:
    with deployed(board, tmp_path) as ns:
        board.control.set_faults({"corrupt": {"stage": "xen", "offset": 2}})
        board.control.reset()
        capture = read_until(ns, END)
    assert b"\r\n(X\xffN) Xen version " in capture
