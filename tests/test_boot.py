from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from hil.boot import BootResult, BootStatus, RetryPolicy, StageStatus, boot
from hil.console import ConsoleGroup, ReconnectPolicy
from hil.errors import ExitCode, InfraError
from hil.lab import Stage, load_board_type
from hil.results import StageStatus as ReportedStatus
from hil.xen.messages import message
from tests.tcp_console import DROP, ScriptedBoard, Step

BOARDS = Path(__file__).resolve().parent.parent / "boards"
FAST = RetryPolicy(attempts=3, wait_initial_s=0.01, wait_max_s=0.01)


def _xen(key: str, **values: object) -> bytes:
    return f"(XEN) {message(key).render(**values)}\r\n".encode()


TFA: list[Step] = [
    b"NOTICE:  Booting Trusted Firmware\r\nNOTICE:  BL1: v2.12.1(release)\r\n",
    b"NOTICE:  BL2: v2.12.1(release)\r\n",
    b"NOTICE:  BL31: v2.12.1(release)\r\n",
]
SPMC: list[Step] = [b"HIL test SPMC v1 core=0\r\n"]
XEN: list[Step] = [
    0.1,
    _xen("xen_version", version="4.22-rc", rest="(root@lab) (gcc 12.2.0) debug=n"),
    _xen("mediator_version", version="1.2"),
    _xen("tee_using", name="FF-A"),
]
PROBE: list[Step] = [b"HILPROBE begin n=2 el=1\r\n", b"HILPROBE end\r\n"]
GOOD = [*TFA, *SPMC, *XEN, *PROBE]
STALLED_AFTER_BL31 = TFA


def _stages(timeout_s: float = 0.5) -> list[Stage]:
    """qemu-virt's stages for the probe as a board with the one console ``uart0`` has them."""
    return [
        replace(s, timeout_s=timeout_s, console="uart0")
        for s in load_board_type(BOARDS / "qemu-virt.toml").stages
        if s.guest in (None, "probe")
    ]


def _boot(
    tmp_path: Path, boots: list[list[Step]], stages: list[Stage] | None = None
) -> tuple[BootResult, ScriptedBoard]:
    board = ScriptedBoard(boots)
    group = ConsoleGroup({"uart0": board.url}, tmp_path, reconnect=ReconnectPolicy(attempts=2))
    try:
        with group:
            result = boot("qemu0", stages or _stages(), board, group, FAST)
    finally:
        board.close()
    return result, board


def test_good_boot_passes_every_stage_in_order(tmp_path: Path) -> None:
    result, board = _boot(tmp_path, [GOOD])
    assert result.status is BootStatus.BOOTED and result.status.exit_code == ExitCode.OK
    assert len(result.attempts) == 1 and board.resets == 1
    assert [s.name for s in result.stages] == ["bl1", "bl2", "bl31", "spmc", "xen", "ffa", "probe"]
    assert all(s.status is StageStatus.PASSED for s in result.stages)
    times = [t for s in result.stages for t in (s.reached_s, s.done_s)]
    assert times == sorted(times)
    xen = next(s for s in result.stages if s.name == "xen")
    assert xen.reached_s is not None and xen.reached_s >= 0.1  # the pause before Xen
    assert (tmp_path / "uart0.raw").read_bytes() == b"".join(
        s for s in GOOD if isinstance(s, bytes)
    )


def test_stall_is_infra_and_the_boot_is_retried_after_a_power_cycle(tmp_path: Path) -> None:
    result, board = _boot(tmp_path, [STALLED_AFTER_BL31, GOOD])
    assert result.status is BootStatus.BOOTED
    assert board.resets == 2
    first = result.attempts[0]
    assert first.status is BootStatus.INFRA
    assert {s.name: s.status for s in first.stages} == {
        "bl1": StageStatus.PASSED,
        "bl2": StageStatus.PASSED,
        "bl31": StageStatus.PASSED,
        "spmc": StageStatus.STALLED,
        "xen": StageStatus.NOT_REACHED,
        "ffa": StageStatus.NOT_REACHED,
        "probe": StageStatus.NOT_REACHED,
    }
    assert first.last_lines[-1] == "NOTICE:  BL31: v2.12.1(release)"
    assert "board 'qemu0': stage 'spmc'" in (first.error or "")


def test_retries_are_bounded(tmp_path: Path) -> None:
    result, board = _boot(tmp_path, [STALLED_AFTER_BL31])
    assert result.status is BootStatus.INFRA and result.status.exit_code == ExitCode.INFRA
    assert board.resets == FAST.attempts == len(result.attempts)
    assert [a.number for a in result.attempts] == [1, 2, 3]


def test_panic_is_reported_at_once_and_not_retried(tmp_path: Path) -> None:
    panicking = [*TFA, *SPMC, *XEN[:2], b"(XEN) Panic on CPU 0:\r\n(XEN) Xen BUG at ffa.c:42\r\n"]
    started = time.monotonic()
    result, board = _boot(tmp_path, [panicking], stages=_stages(timeout_s=30))
    assert time.monotonic() - started < 10  # 30 s stage timeouts: the panic ended the wait
    assert result.status is BootStatus.PANIC and result.status.exit_code == ExitCode.CHECK_FAILED
    assert board.resets == 1
    ffa = next(s for s in result.stages if s.name == "ffa")
    assert ffa.status is StageStatus.PANIC
    assert "Panic on CPU 0" in (result.error or "")


def test_a_panic_right_after_the_last_marker_is_still_a_panic(tmp_path: Path) -> None:
    # The panic reaches the host with (or a hair after) the probe's last line: the boot that
    # printed it panicked, whatever order the waits saw it in.
    late = [*TFA, *SPMC, *XEN, PROBE[0], b"HILPROBE end\r\n(XEN) Panic on CPU 0:\r\n"]
    result, _ = _boot(tmp_path, [late])
    assert result.status is BootStatus.PANIC
    assert "console 'uart0': panic: '(XEN) Panic on CPU 0:'" in (result.error or "")


class _FlakyPower:
    """A PDU that fails its first reset, then works."""

    def __init__(self, board: ScriptedBoard) -> None:
        self.board, self.calls = board, 0

    def reset(self) -> None:
        self.calls += 1
        if self.calls == 1:
            raise InfraError("board 'qemu0': power reset: command 'pdu' exited 1")
        self.board.reset()

    def power_on(self) -> None: ...
    def power_off(self) -> None: ...
    def close(self) -> None: ...


def test_power_failure_is_an_infra_attempt(tmp_path: Path) -> None:
    board = ScriptedBoard([GOOD])
    try:
        with ConsoleGroup({"uart0": board.url}, tmp_path) as group:
            result = boot("qemu0", _stages(), _FlakyPower(board), group, FAST)
    finally:
        board.close()
    assert result.status is BootStatus.BOOTED
    assert result.attempts[0].status is BootStatus.INFRA
    assert result.attempts[0].error == "board 'qemu0': power reset: command 'pdu' exited 1"
    assert all(s.status is StageStatus.NOT_REACHED for s in result.attempts[0].stages)


def test_a_dropped_console_mid_boot_is_reconnected_without_losing_the_boot(tmp_path: Path) -> None:
    dropping = [*TFA, *SPMC, DROP, *XEN, *PROBE]
    result, _ = _boot(tmp_path, [dropping])
    assert result.status is BootStatus.BOOTED and len(result.attempts) == 1
    sent = b"".join(s for s in dropping if isinstance(s, bytes))
    assert (tmp_path / "uart0.raw").read_bytes() == sent


def test_every_boot_stage_status_has_a_report_status() -> None:
    # A new boot status without a report status would crash the case at the end of a run.
    assert {s.reported() for s in StageStatus} == set(ReportedStatus)
    assert StageStatus.LOST.reported() is StageStatus.STALLED.reported() is ReportedStatus.TIMEOUT


def test_a_stage_is_done_when_the_line_holding_its_done_marker_is_whole(tmp_path: Path) -> None:
    # The Linux guest's end line says how many devices it saw after its marker; that part came
    # a read later, and the boot was judged without it (not judged: '2 partition lines were
    # printed' against an end line 'HILLINUX end').
    stages = [
        replace(s, timeout_s=2, console="uart0")
        for s in load_board_type(BOARDS / "qemu-virt.toml").stages
        if s.guest in (None, "linux")
    ]
    linux: list[Step] = [b"HILLINUX version driver=1.2 firmware=1.2\r\n", b"HILLINUX end"]
    result, _ = _boot(tmp_path, [[*TFA, *SPMC, *XEN, *linux, 0.3, b" devices=0\r\n"]], stages)
    assert result.status is BootStatus.BOOTED, result.error
    (attempt,) = result.attempts
    judged = (tmp_path / "uart0.raw").read_bytes()[: attempt.raw_end["uart0"]]
    assert judged.endswith(b"HILLINUX end devices=0\r\n")
