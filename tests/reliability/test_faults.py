"""``hil run`` against virtual boards that misbehave like a bad lab night: for every fault the
verdict is the right one (a broken lab is never a FAIL, a broken transcript never a PASS), retries
are bounded as configured, the run ends within its timeouts, and the capture holds every byte the
board sent while the controller was listening."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from hil.probe import PREFIX
from hil.sim.launcher import VirtualBoardProcess
from tests.reliability.support import (
    FAST_TIMEOUTS,
    Outcome,
    board_table,
    boots,
    hil_run,
    write_lab,
)

SIM_STAGES = ("bl1", "bl2", "bl31", "spmc", "xen", "ffa", "dom0", "probe")
# Seconds a run may take beyond its stage timeouts and retry backoff (1 s, 2 s, ...): launch,
# deploy, reports, and a slow CI machine.
SLACK_S = 4.0


def run(tmp_path: Path, faults: dict[str, Any], **lab: Any) -> Outcome:
    return hil_run(write_lab(tmp_path / "lab", faults, **lab), tmp_path / "results")


def assert_capture_is_prefix_of_sent(out: Outcome, console: str = "ns") -> None:
    """Every byte the board sent from the first connection on is in the capture, in order, with
    nothing added: after the run the board may go on printing to nobody, so the capture is a
    prefix of the sent-log (the whole of it when the board fell silent)."""
    raw, sent = out.raw("v0", "all-secure", console), out.sent("v0", console)
    assert raw, "nothing captured"
    assert raw == sent[: len(raw)], f"{console}: capture differs from what the board sent"


def assert_retry_bound(out: Outcome, attempts: int, timeouts_s: float) -> None:
    backoff = sum(min(2**i, 30) for i in range(attempts - 1))
    assert out.seconds < timeouts_s + backoff + SLACK_S


def probe_lines(data: bytes) -> list[str]:
    last = boots(data)[-1].decode(errors="replace")
    return [line[line.index(PREFIX) :] for line in last.splitlines() if PREFIX in line]


@pytest.mark.parametrize("stage", SIM_STAGES)
def test_stall_once_is_retried_and_passes(tmp_path: Path, stage: str) -> None:
    out = run(tmp_path, {"stall": {"stage": stage, "boots": 1}}, boot_attempts=3)
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (0, "pass", 2)
    assert_retry_bound(out, 2, 0.5)
    for console in ("ns", "secure"):
        # The board printed nothing after the retried boot's transcript: all of it is captured.
        assert out.raw("v0", "all-secure", console) == out.sent("v0", console)


@pytest.mark.slow
@pytest.mark.parametrize("attempts", [1, 3])
def test_stall_every_boot_is_an_infra_error_after_the_configured_attempts(
    tmp_path: Path, attempts: int
) -> None:
    out = run(tmp_path, {"stall": {"stage": "xen"}}, boot_attempts=attempts)
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (
        3,
        "infra_error",
        attempts,
    )
    assert "stage 'xen'" in out.case["message"]
    assert_retry_bound(out, attempts, attempts * FAST_TIMEOUTS["xen"])
    assert out.raw("v0", "all-secure") == out.sent("v0")
    assert len(boots(out.sent("v0"))) == attempts


@pytest.mark.parametrize("pattern", ["random", "nul", "ff", "utf8"])
@pytest.mark.parametrize(("stage", "console"), [("bl31", "ns"), ("spmc", "secure")])
def test_garbage_outside_xen_still_passes(
    tmp_path: Path, pattern: str, stage: str, console: str
) -> None:
    fault = {"stage": stage, "console": console, "pattern": pattern, "size": 2048, "seed": 7}
    out = run(tmp_path, {"garbage": fault})
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (0, "pass", 1)
    assert out.raw("v0", "all-secure", console) == out.sent("v0", console)


@pytest.mark.parametrize(
    "fault",
    [
        {"burst": {"stage": "ffa", "size": 1000}},  # ends mid-line: glued to Xen's first FF-A line
        {"garbage": {"stage": "ffa", "pattern": "ff"}},  # no newline: all of it glued in front
        {"garbage": {"stage": "ffa", "line": 1, "pattern": "utf8"}},
    ],
)
def test_noise_glued_to_xen_ffa_lines_is_not_a_fail(tmp_path: Path, fault: dict[str, Any]) -> None:
    """Found by the soak: noise without a newline in front of an FF-A line made the parser miss
    the line and the comparison blame Xen. The Xen line itself is whole, so it is read."""
    out = run(tmp_path, fault)
    assert (out.exit_code, out.case["verdict"]) == (0, "pass")
    assert out.raw("v0", "all-secure") == out.sent("v0")


@pytest.mark.parametrize("pattern", ["nul", "ff", "utf8"])
def test_garbage_between_probe_lines_passes_only_on_an_intact_transcript(
    tmp_path: Path, pattern: str
) -> None:
    """Noise without a newline between two probe lines is glued in front of the next one and
    leaves every probe line whole (the parser reads a line from its HILPROBE on): PASS is right,
    and the transcript judged is exactly the one the board printed. (Garbage lines of their own
    in Xen's output could be damaged evidence: tests/reliability/test_evidence.py.)"""
    out = run(tmp_path, {"garbage": {"stage": "probe", "line": 3, "pattern": pattern}})
    raw, sent = out.raw("v0", "all-secure"), out.sent("v0")
    assert raw == sent
    assert out.case["verdict"] == "pass"
    assert probe_lines(raw) == probe_lines(sent)


@pytest.mark.parametrize(
    "damage",
    [
        "HILPROBE answer q=1\r\n",  # a kind the probe never prints
        "HILPROBE version req=0x000100zz w0=0x1\r\n",  # a field that is not hex
        "HILPROBE partinfo q=0 uuid=\x00\xff\r\n",  # cut by noise
        "HILPROBE version req=\r\n",  # truncated
    ],
)
def test_a_damaged_probe_line_is_never_a_pass(tmp_path: Path, damage: str) -> None:
    """A probe line hil cannot read means the evidence was damaged on the wire: the case is an
    infra error (the lab must look), never a PASS and never a FAIL blaming the firmware."""
    out = run(tmp_path, {"text": {"stage": "probe", "line": 4, "text": damage}})
    assert (out.exit_code, out.case["verdict"]) == (3, "infra_error")
    assert "probe line" in out.case["message"] or "HILPROBE" in out.case["message"]
    assert out.raw("v0", "all-secure") == out.sent("v0")


def test_a_panic_is_a_fail_at_once_not_retried(tmp_path: Path) -> None:
    out = run(tmp_path, {"text": {"stage": "dom0", "text": "(XEN) Panic on CPU 0:\r\n"}})
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (1, "fail", 1)
    assert "panic" in [s["status"] for s in out.case["stages"]]


@pytest.mark.parametrize(("stage", "line"), [("xen", 0), ("probe", 5)])
def test_disconnect_once_loses_only_what_was_sent_while_nobody_listened(
    tmp_path: Path, stage: str, line: int
) -> None:
    """The board drops the client and goes on printing; like a UART behind a terminal server,
    those bytes are lost to the wire. The stage waiting for them stalls, the retry boots again.
    Exactly this must hold: the first boot up to the drop and the whole retried boot are in the
    capture, in order, and the capture holds nothing the board did not send."""
    fault = {"disconnect": {"stage": stage, "line": line, "boots": 1}}
    out = run(tmp_path, fault)
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (0, "pass", 2)
    raw, sent = out.raw("v0", "all-secure"), out.sent("v0")
    first, second = boots(sent)
    cut = _fault_offset(first, stage, line)
    assert raw.startswith(first[:cut])
    assert raw.endswith(second)
    # In between: whatever the reconnected console caught of the first boot's tail, unaltered.
    middle = raw[cut : len(raw) - len(second)]
    assert middle in first[cut:]


def test_disconnect_that_waits_for_the_client_loses_nothing(tmp_path: Path) -> None:
    """The board waits for the client to come back: nothing is lost, but hil cannot know that
    (a UART behind a terminal server goes on printing), so the boot is not judged and is
    retried; the retried boot passes."""
    out = run(tmp_path, {"disconnect": {"stage": "probe", "line": 5, "hold": True, "boots": 1}})
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (0, "pass", 2)
    assert out.raw("v0", "all-secure") == out.sent("v0")
    first = out.case["boots"][0]
    assert first["outcome"] == "infra_error" and "was disconnected for" in first["error"]


@pytest.mark.slow
def test_disconnect_every_boot_is_an_infra_error(tmp_path: Path) -> None:
    out = run(tmp_path, {"disconnect": {"stage": "xen"}}, boot_attempts=2)
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (3, "infra_error", 2)
    raw, sent = out.raw("v0", "all-secure"), out.sent("v0")
    pieces = [boot[: _fault_offset(boot, "xen", 0)] for boot in boots(sent)]
    assert len(pieces) == 2
    assert raw.startswith(pieces[0]) and pieces[1] in raw[len(pieces[0]) :]
    assert_retry_bound(out, 2, 2 * FAST_TIMEOUTS["xen"])


def test_reboot_during_the_probe_judges_the_last_boot(tmp_path: Path) -> None:
    """A spontaneous reboot halfway through the probe: the boot machine follows the new boot,
    the verdict is taken from the last (complete) boot only, and both boots are captured."""
    out = run(tmp_path, {"reboot": {"stage": "probe", "line": 5}})
    raw, sent = out.raw("v0", "all-secure"), out.sent("v0")
    assert raw == sent
    assert len(boots(raw)) == 2
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (0, "pass", 1)


@pytest.mark.slow
def test_reboot_loop_is_an_infra_error_within_its_timeouts(tmp_path: Path) -> None:
    # A small stage delay: at 0 the loop floods the console at full speed for no extra coverage.
    out = run(tmp_path, {"reboot_loop": {"stage": "bl31"}}, boot_attempts=2, stage_delay=0.01)
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (3, "infra_error", 2)
    assert_retry_bound(out, 2, 2 * FAST_TIMEOUTS["bl31"])
    assert_capture_is_prefix_of_sent(out)
    assert len(boots(out.raw("v0", "all-secure"))) > 4


def test_slow_console_passes_within_its_stage_timeout(tmp_path: Path) -> None:
    """1 byte every 10 ms on the secure console, whose only stage is one short line."""
    timeouts = {**FAST_TIMEOUTS, "spmc": 5.0, "xen": 5.0}
    fault = {"slow": {"stage": "spmc", "console": "secure", "ms_per_byte": 10}}
    out = run(tmp_path, fault, timeouts=timeouts)
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (0, "pass", 1)
    secure = out.sent("v0", "secure")
    assert out.raw("v0", "all-secure", "secure") == secure
    assert out.seconds > len(secure) * 0.010


@pytest.mark.slow
def test_burst_of_50_mib_is_captured_whole(tmp_path: Path) -> None:
    timeouts = {**FAST_TIMEOUTS, "probe": 90.0}
    out = run(tmp_path, {"burst": {"stage": "dom0", "size": 50 << 20}}, timeouts=timeouts)
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (0, "pass", 1)
    raw, sent = out.raw("v0", "all-secure"), out.sent("v0")
    assert len(raw) > 50 << 20
    assert raw == sent


def _fault_offset(boot: bytes, stage: str, line: int) -> int:
    """Where in one boot's ns output a fault at ``stage``/``line`` acted."""
    firsts = {
        "xen": b"(XEN) Xen version",
        "probe": b"HILPROBE begin",
    }
    start = boot.index(firsts[stage])
    for _ in range(line):
        start = boot.index(b"\n", start) + 1
    return start


def unlaunched(tmp_path: Path, control: str, consoles: dict[str, str]) -> Path:
    """A lab whose board is reached at given addresses instead of launched by hil."""
    reach = {"backend": "virtual", "control": control, "timeout": 2}
    extra = {"consoles": consoles, "power": reach, "deploy": reach}
    return write_lab(tmp_path / "lab", boards=(), tables=[board_table("v0", extra=extra)])


def test_console_nobody_listens_on_is_an_infra_error_at_once(tmp_path: Path) -> None:
    with VirtualBoardProcess.start("v0", workdir=tmp_path / "board", stage_delay=0) as board:
        dead = f"socket://127.0.0.1:{_free_port()}"
        lab = unlaunched(tmp_path, f"{board.host}:{board.control.port}", {"ns": dead})
        out = hil_run(lab, tmp_path / "results")
    assert (out.exit_code, out.case["verdict"]) == (3, "infra_error")
    assert "cannot open" in out.case["message"] and "console 'ns'" in out.case["message"]
    assert out.seconds < SLACK_S


def test_killed_virtual_board_is_an_infra_error_at_once(tmp_path: Path) -> None:
    board = VirtualBoardProcess.start("v0", workdir=tmp_path / "board", stage_delay=0)
    control = f"{board.host}:{board.control.port}"
    consoles = {name: board.console_url_for(name) for name in board.consoles}
    board.process.kill()
    board.process.wait()
    out = hil_run(unlaunched(tmp_path, control, consoles), tmp_path / "results")
    assert (out.exit_code, out.case["verdict"]) == (3, "infra_error")
    assert "virtual board v0" in out.case["message"]
    assert out.seconds < SLACK_S


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
