"""What `hil run` prints while it works: finished cases (a FAIL with its diff), the live status
of each board on a terminal, heartbeats elsewhere, and the last line."""

import io
import os
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pexpect

from hil.boot import BootProgress
from hil.progress import DIFF_LINES, ProgressPrinter, outcome_line
from hil.results import DIFF_ROLE, CaseResult, RunResult, Verdict
from tests.labs import write_lab

REPO = Path(__file__).resolve().parent.parent

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SGR = re.compile(r"\x1b\[[0-9;]*m")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def finished(verdict: Verdict, message: str = "", board: str = "juno-r2", **extra):
    return CaseResult(board, "bit15-ids", verdict, T0, 12.34, message, **extra)


def failing(diff_lines: int) -> CaseResult:
    diff = ["--- expected (xen-4.21)", "+++ observed"]
    diff += [f"{'-+'[i % 2]}(XEN) line {i}" for i in range(diff_lines - 2)]
    return finished(
        Verdict.FAIL,
        f"{diff_lines} lines differ from xen-4.21",
        diff=diff,
        artifacts={DIFF_ROLE: "juno-r2/bit15-ids/diff.txt"},
    )


def test_not_a_tty_gets_plain_lines_for_starts_failed_attempts_and_verdicts():
    out = io.StringIO()
    printer = ProgressPrinter(out)
    printer.case_started("juno-r2", "bit15-ids")
    printer.boot_progress("juno-r2", "bit15-ids", BootProgress(1, "xen"))
    printer.boot_progress("juno-r2", "bit15-ids", BootProgress(1, error="no Xen banner in 3 s"))
    printer.case_finished(finished(Verdict.INFRA_ERROR, "no Xen banner in 3 s", attempts=2))
    assert out.getvalue().splitlines() == [
        "[juno-r2] bit15-ids: started",
        "[juno-r2] bit15-ids: boot attempt 1 failed: no Xen banner in 3 s",
        "[juno-r2] bit15-ids: INFRA_ERROR (12.3 s, 2 attempts) - no Xen banner in 3 s",
    ]
    assert "\x1b" not in out.getvalue()


def test_a_fail_shows_the_first_diff_lines_and_where_the_rest_is(tmp_path):
    out = io.StringIO()
    printer = ProgressPrinter(out, refresh_s=60)
    printer.run_started(tmp_path / "results" / "run-1")
    printer.case_finished(failing(DIFF_LINES + 12))
    printer.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[juno-r2] bit15-ids: FAIL (12.3 s) - 52 lines differ")
    assert lines[1:4] == ["    --- expected (xen-4.21)", "    +++ observed", "    -(XEN) line 0"]
    assert len(lines) == 1 + DIFF_LINES + 1
    where = tmp_path / "results" / "run-1" / "juno-r2" / "bit15-ids" / "diff.txt"
    assert lines[-1] == f"    ... 12 more lines in {where}"


def test_a_short_diff_is_shown_whole_with_its_file(tmp_path):
    out = io.StringIO()
    printer = ProgressPrinter(out, refresh_s=60)
    printer.run_started(tmp_path)
    printer.case_finished(failing(6))
    printer.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + 6 + 1
    assert lines[-1] == f"    (diff saved in {tmp_path / 'juno-r2/bit15-ids/diff.txt'})"


def test_diff_text_from_the_console_cannot_drive_the_terminal():
    out = Tty()
    case = finished(Verdict.FAIL, "1 line differs", diff=["+(XEN) \x1b]0;pwn\x07\x1b[2Jhi"])
    ProgressPrinter(out).case_finished(case)
    text = out.getvalue()
    assert "pwn" not in text and "\x1b[2J" not in text and "\x07" not in text
    assert "\x1b[32m+(XEN) hi\x1b[0m" in text  # observed lines green on a TTY


def test_heartbeat_every_period_while_a_stage_keeps_a_board_waiting():
    out, clock = io.StringIO(), Clock()
    printer = ProgressPrinter(out, heartbeat_s=30, clock=clock)
    printer.case_started("juno0", "all-secure")
    printer.boot_progress("juno0", "all-secure", BootProgress(2, "xen"))
    for now in (110.0, 129.0, 131.0, 140.0, 161.0, 200.0):
        clock.now = now
        printer.tick()
    assert out.getvalue().splitlines()[1:] == [
        "[juno0] all-secure: waiting for stage xen for 31 s (attempt 2)",
        "[juno0] all-secure: waiting for stage xen for 61 s (attempt 2)",
        "[juno0] all-secure: waiting for stage xen for 100 s (attempt 2)",
    ]
    printer.boot_progress("juno0", "all-secure", BootProgress(2, "ffa"))  # a new stage: quiet
    clock.now = 210.0
    printer.tick()
    assert len(out.getvalue().splitlines()) == 4


def test_tty_shows_a_status_line_per_busy_board_with_stage_and_elapsed_time():
    out, clock = Tty(), Clock()
    printer = ProgressPrinter(out, clock=clock)
    printer.case_started("vb0", "count-63")
    printer.case_started("vb1", "zero-sps")
    clock.now = 101.0
    printer.boot_progress("vb0", "count-63", BootProgress(1, "xen"))
    printer.boot_progress("vb1", "zero-sps", BootProgress(2, "bl31"))
    clock.now = 103.5
    printer.tick()
    printer.tick()  # the second frame replaces the first
    frame = out.getvalue().split("\x1b[2F\x1b[J")
    assert len(frame) == 2
    assert SGR.sub("", frame[1]).splitlines() == [
        "  vb0  count-63: xen 2.5 s, case 3.5 s",
        "  vb1  zero-sps: bl31 2.5 s (attempt 2), case 3.5 s",
    ]
    # A finished case scrolls above the status block, which is redrawn below it.
    printer.case_finished(finished(Verdict.PASS, "behaves as xen-4.22", board="vb0"))
    after = out.getvalue().split("\x1b[2F\x1b[J")[-1]  # the two status lines taken off ...
    assert SGR.sub("", after).splitlines() == [
        "[vb0] bit15-ids: PASS (12.3 s) - behaves as xen-4.22",
        "  vb1  zero-sps: bl31 2.5 s (attempt 2), case 3.5 s",  # ... and one put back
    ]
    printer.close()
    assert out.getvalue().endswith("\x1b[1F\x1b[J")  # nothing left behind


def test_status_says_retry_between_a_failed_boot_and_the_next(monkeypatch):
    out, clock = Tty(), Clock()
    printer = ProgressPrinter(out, clock=clock)
    printer.case_started("vb0", "zero-sps")
    printer.boot_progress("vb0", "zero-sps", BootProgress(1, "xen"))
    clock.now = 110.0
    printer.boot_progress("vb0", "zero-sps", BootProgress(1, error="no Xen banner"))
    clock.now = 111.5
    printer.tick()
    status = SGR.sub("", out.getvalue().split("\x1b[J")[-1]).splitlines()
    assert status == ["  vb0  zero-sps: retry 1.5 s, case 11.5 s"]


def test_status_lines_are_cut_to_the_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    out, clock = Tty(), Clock()
    printer = ProgressPrinter(out, clock=clock)
    printer.case_started("board-with-a-long-name", "several-non-secure")
    printer.tick()
    status = SGR.sub("", out.getvalue().split("\x1b[J")[-1]).splitlines()
    assert status and all(len(line) <= 39 for line in status)


def test_summary_table_lines_up_and_the_last_line_counts_every_verdict(tmp_path):
    cases = [
        finished(Verdict.PASS, board="fvp-base-revc"),
        finished(Verdict.FAIL, "2 lines differ", board="juno-r2"),
        finished(Verdict.INFRA_ERROR, "no Xen banner", board="qemu0"),
    ]
    out = Tty()
    run = RunResult("r-1", "lab.toml", T0, T0, cases)
    ProgressPrinter(out).run_finished(run, tmp_path / "report.html")
    lines = SGR.sub("", out.getvalue()).splitlines()
    header, rows = lines[1], lines[2:5]
    verdict_col = header.index("VERDICT")
    assert [row[verdict_col:].split()[0] for row in rows] == ["PASS", "FAIL", "INFRA_ERROR"]
    assert rows[1].endswith("12.3  2 lines differ")
    assert lines[-2] == f"report: {tmp_path / 'report.html'}"
    assert lines[-1] == (
        "run r-1: 1 pass, 1 fail, 1 infra error, 0 not run -> exit 1: a check failed; "
        "1 not judged (infra error or not run)"
    )


def test_last_line_says_why_for_every_exit_code():
    def line(*verdicts: Verdict, interrupted: bool = False) -> str:
        cases = [finished(v, board=f"b{i}") for i, v in enumerate(verdicts)]
        return outcome_line(RunResult("r", "lab.toml", T0, T0, cases, interrupted=interrupted))

    assert line(Verdict.PASS).endswith("-> exit 0: all passed")
    assert line(Verdict.PASS, Verdict.FAIL).endswith("-> exit 1: a check failed")
    assert line(Verdict.PASS, Verdict.NOT_RUN, Verdict.INFRA_ERROR).endswith(
        "0 fail, 1 infra error, 1 not run -> exit 3: 2 not judged"
    )
    assert line(Verdict.PASS, interrupted=True) == (
        "run r: interrupted, 1 pass, 0 fail, 0 infra error, 0 not run -> exit 3: interrupted"
    )


def test_lines_from_concurrent_boards_never_interleave():
    out = io.StringIO()
    printer = ProgressPrinter(out)
    boards = [f"board{i}" for i in range(8)]

    def work(board: str) -> None:
        for n in range(50):
            printer.boot_progress(board, "s", BootProgress(n, error=f"stall {n}"))

    threads = [threading.Thread(target=work, args=(b,)) for b in boards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 400
    assert all(
        re.fullmatch(r"\[board\d\] s: boot attempt (\d+) failed: stall \1", line) for line in lines
    )


def test_display_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    printer = ProgressPrinter(out, refresh_s=60)
    printer.run_started(Path("results/run-1").resolve())
    printer.case_finished(failing(4))
    printer.close()
    assert out.getvalue().splitlines()[-1] == (
        "    (diff saved in results/run-1/juno-r2/bit15-ids/diff.txt)"
    )


def test_hil_run_in_a_terminal_shows_each_boards_stage_live(tmp_path):
    """A real run in a pseudo-terminal: while boards boot, a status line per board names the
    stage it waits for and for how long; the status lines are gone when the summary prints."""
    lab = write_lab(tmp_path, {"vb0": {}, "vb1": {}}, stage_delay=0.25)
    argv = ["-m", "hil", "run", "--lab", str(lab), "--scenario", "all-secure", "-j", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100"}
    child = pexpect.spawn(sys.executable, argv, cwd=str(tmp_path), env=env, timeout=30)
    child.expect(rb"vb[01]  all-secure: (bl31|spmc|xen|ffa|probe) \d+\.\d s, case \d+\.\d s")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    tail = SGR.sub("", child.before.decode())
    assert "[vb0] all-secure: PASS" in tail and "[vb1] all-secure: PASS" in tail
    assert tail.rstrip().endswith("-> exit 0: all passed")
    assert "started" not in tail  # the status line says it; no extra lines on a terminal
    # Whatever status was drawn last was erased before the summary.
    assert tail.rstrip().split("\x1b[J")[-1].count(", case ") == 0


def test_hil_run_into_a_pipe_prints_plain_lines(tmp_path):
    lab = write_lab(tmp_path, {"vb0": {}}, stage_delay=0.05)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "hil", "run", "--lab", str(lab), "--scenario", "zero-sps"],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0
    assert b"\x1b" not in done.stdout
    lines = done.stdout.decode().splitlines()
    assert lines[0] == "[vb0] zero-sps: started"
    assert lines[1].startswith("[vb0] zero-sps: PASS")
