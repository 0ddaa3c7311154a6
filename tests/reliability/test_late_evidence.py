"""Evidence that reaches the host late never changes a verdict: a case is judged on every byte that
had reached the host by the end of the boot, whatever order the console readers got to them in.

Each UART has its own path to the host and its own reader thread. On a loaded host (or behind a
terminal server) the secure console's reader can record a panic the secure world printed before
the probe's last line *after* the normal console's reader matched that line. These tests hold one
reader back on purpose, so the order is the bad one every time, not one run in twenty."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hil.boot import BootStatus, RetryPolicy, boot
from hil.console import ConsoleGroup
from hil.guest import PROBE as PROBE_GUEST
from hil.lab import Stage, load_board_type
from hil.xen.log import NORMAL_WORLD_PANICS, SECURE_WORLD_PANICS
from tests.test_boot import PROBE, SPMC, TFA, XEN

BOARDS = Path(__file__).resolve().parents[2] / "boards"
ONCE = RetryPolicy(attempts=1)
HELD_S = 1.5  # how long the slow reader sits on what it read before recording it
# qemu-virt's boot, as tests/test_boot.py plays it, without its pauses.
NS_BOOT = b"".join(step for step in (*TFA, *XEN, *PROBE) if isinstance(step, bytes))
SPMC_BANNER = b"".join(step for step in SPMC if isinstance(step, bytes))


class _LoopBoard:
    """A board on two ``loop://`` consoles: a reset writes ``secure`` on the secure console,
    then the normal world's whole boot."""

    def __init__(self, group: ConsoleGroup, secure: bytes) -> None:
        self.group, self.secure = group, secure

    def reset(self) -> None:
        self.group["sec"].write(SPMC_BANNER + self.secure)
        self.group["ns"].write(NS_BOOT)

    def power_on(self) -> None:
        pass

    def power_off(self) -> None:
        pass

    def close(self) -> None:
        pass


def _stages() -> list[Stage]:
    """qemu-virt's stages for the probe with the SPMC's banner on ``sec`` and the rest on
    ``ns``."""
    stages = load_board_type(BOARDS / "qemu-virt.toml").stages
    return [
        replace(s, timeout_s=5.0, console="sec" if s.name == "spmc" else "ns")
        for s in stages
        if s.guest in (None, PROBE_GUEST)
    ]


def _hold_reader(group: ConsoleGroup, console: str, needle: bytes) -> threading.Event:
    """Make ``console``'s reader record what it read before ``needle`` at once, then sit HELD_S
    before recording the rest, as a reader thread the scheduler stopped running does; the event
    is set once all is recorded."""
    target = group[console]
    ingest, recorded = target._ingest, threading.Event()

    def slow_ingest(data: bytes) -> bool:
        at = data.find(needle)
        if at < 0:
            return ingest(data)
        kept = ingest(data[:at]) if at else True
        time.sleep(HELD_S)
        kept = kept and ingest(data[at:])
        recorded.set()
        return kept

    target._ingest = slow_ingest  # type: ignore[method-assign]
    return recorded


def _group(tmp_path: Path) -> ConsoleGroup:
    patterns = {"ns": NORMAL_WORLD_PANICS, "sec": SECURE_WORLD_PANICS}
    return ConsoleGroup({"ns": "loop://", "sec": "loop://"}, tmp_path, panic_patterns=patterns)


@pytest.mark.parametrize(
    "panic",
    [
        b"Panic: SP 8001 aborted\r\n",  # Hafnium's panic()
        b"E/TC:0 0 Panic at core/kernel/panic.c:32 <__do_panic>\r\n",  # OP-TEE's
    ],
)
def test_a_secure_panic_recorded_after_the_probes_end_is_still_a_fail(
    tmp_path: Path, panic: bytes
) -> None:
    group = _group(tmp_path)
    with group:
        recorded = _hold_reader(group, "sec", panic)
        result = boot("v0", _stages(), _LoopBoard(group, panic), group, ONCE)
        # The boot was judged only once the panic was in the capture (before: judged first, a
        # PASS, and the panic showed up in sec.raw afterwards).
        assert recorded.is_set()
    assert result.status is BootStatus.PANIC, result.error
    assert "console 'sec': panic: " + repr(panic.decode().strip()) in (result.error or "")


def test_a_board_judged_without_a_settle_still_fails_on_a_secure_panic_recorded_late(
    tmp_path: Path,
) -> None:
    # A QEMU board is judged without waiting for bytes on their way (its UARTs are its own
    # sockets, hil.boards.qemu): what keeps the verdict then is the readers' sync alone.
    panic = b"Panic: SP 8001 aborted\r\n"
    group = _group(tmp_path)
    with group:
        recorded = _hold_reader(group, "sec", panic)
        result = boot("v0", _stages(), _LoopBoard(group, panic), group, ONCE, settle_s=0.0)
        assert recorded.is_set()
    assert result.status is BootStatus.PANIC, result.error


def test_a_reader_that_cannot_catch_up_makes_the_boot_not_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Never a verdict on a capture that may not hold everything: infra error, retried.
    monkeypatch.setattr("hil.boot.SYNC_TIMEOUT_S", 0.2)
    group = _group(tmp_path)
    with group:
        recorded = _hold_reader(group, "sec", b"still reading")
        board = _LoopBoard(group, b"SP 8001: still reading\r\n")
        result = boot("v0", _stages(), board, group, ONCE)
        recorded.wait(5)
    assert result.status is BootStatus.INFRA
    assert "not judged: console(s) sec not read to the end of the boot" in (result.error or "")
