"""``hil run`` killed or interrupted mid-boot: what it captured so far stays readable, the board
is released, the virtual board it launched does not outlive it, and the next run works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hil.cli import main
from hil.lock import BoardLock
from tests.reliability.support import FAST_TIMEOUTS, board_table, hil_run, write_lab

# Long enough that only a kill or an interrupt can end the stalled boot within the test.
STALLED = {**FAST_TIMEOUTS, "xen": 60.0}


def wait_for(what: str, ready: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent (a container's init may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def start_run(lab: Path, results: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "hil", "run", "--lab", str(lab), "--results", str(results)]
    with log.open("wb") as out:
        return subprocess.Popen([*argv, *args], stdout=out, stderr=subprocess.STDOUT)


def case_dir(results: Path, board: str) -> Path:
    """The (single) run's directory for ``board`` once the runner made it."""
    runs = (
        [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
        if results.exists()
        else []
    )
    return runs[0] / board if runs else results / "-" / board


def stalled_in_xen(results: Path, board: str) -> Callable[[], bool]:
    def ready() -> bool:
        raw = case_dir(results, board) / "all-secure" / "ns.raw"
        return raw.exists() and b"NOTICE:  BL31: Built" in raw.read_bytes()

    return ready


def board_pid(results: Path, board: str) -> int:
    info = case_dir(results, board) / ".board" / f"{board}.ports.json"
    return int(json.loads(info.read_text())["pid"])


@pytest.mark.slow
def test_sigkill_mid_boot_leaves_a_readable_capture_and_a_free_board(
    tmp_path: Path, private_locks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = write_lab(tmp_path / "lab", {"stall": {"stage": "xen", "boots": 1}}, timeouts=STALLED)
    results = tmp_path / "results"
    process = start_run(lab, results, tmp_path / "hil.out", "--scenario", "all-secure")
    try:
        wait_for("the boot to stall in xen", stalled_in_xen(results, "v0"))
        sim = board_pid(results, "v0")
    finally:
        process.kill()
        process.wait()
    board = case_dir(results, "v0")
    capture = board / "all-secure"
    # Everything the board printed before the kill is on disk, byte for byte.
    assert (capture / "ns.raw").read_bytes() == (board / ".board" / "v0.ns.sent").read_bytes()
    assert "BL31: Built" in (capture / "ns.log").read_text(encoding="utf-8")
    assert main(["triage", str(capture / "ns.log")]) in (0, 1, 3)  # 3: stopped before FF-A
    assert "Traceback" not in capsys.readouterr().err
    # The controller is gone, so is its board process, and the board lock with it.
    wait_for("the orphaned virtual board to quit", lambda: not alive(sim), timeout=5.0)
    BoardLock("v0", directory=private_locks).acquire().release()
    # A new run of the same board works.
    again = hil_run(write_lab(tmp_path / "healthy"), tmp_path / "again")
    assert (again.exit_code, again.case["verdict"]) == (0, "pass")


@pytest.mark.slow
@pytest.mark.parametrize(
    "signals",
    [
        (signal.SIGINT,),
        (signal.SIGTERM,),  # a cancelled CI job, kill, systemd: the same as Ctrl-C
        (signal.SIGINT, signal.SIGINT),  # impatient: again while it shuts down
        (signal.SIGTERM, signal.SIGTERM),
    ],
    ids=["ctrl-c", "sigterm", "ctrl-c-twice", "sigterm-twice"],
)
def test_an_interrupt_mid_boot_reports_what_completed_and_exits_3_quickly(
    tmp_path: Path, private_locks: Path, signals: tuple[signal.Signals, ...]
) -> None:
    """Board ``ok`` finishes its case; board ``stuck`` stalls in Xen with a 60 s timeout when
    Ctrl-C (or SIGTERM) arrives. The run must not wait for that timeout, and a second signal
    while it shuts down must not lose the reports."""
    stuck = board_table("stuck", {"stall": {"stage": "xen"}}, timeouts=STALLED)
    lab = write_lab(tmp_path / "lab", {}, boards=("ok",), tables=[stuck])
    results = tmp_path / "results"
    log = tmp_path / "hil.out"
    process = start_run(lab, results, log, "-j", "2", "--scenario", "all-secure")
    try:
        wait_for("board ok to pass", lambda: b"[ok] all-secure: PASS" in log.read_bytes())
        wait_for("board stuck to stall", stalled_in_xen(results, "stuck"))
        sim = board_pid(results, "stuck")
        t0 = time.monotonic()
        for i, sig in enumerate(signals):
            if i:
                time.sleep(0.05)  # the first is being handled: boards closing, reports due
            process.send_signal(sig)
        code = process.wait(timeout=10)
        took = time.monotonic() - t0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 3, log.read_text()
    assert took < 10
    summary = json.loads((case_dir(results, "ok").parent / "summary.json").read_text())
    assert summary["run"]["interrupted"] is True
    verdicts = {c["board"]: c["verdict"] for c in summary["run"]["cases"]}
    assert verdicts == {"ok": "pass", "stuck": "not_run"}
    assert summary["exit_code"] == 3
    assert b"Traceback" not in log.read_bytes()
    # Released on the way out: the board lock is free and the board process has quit.
    for board in ("ok", "stuck"):
        BoardLock(board, directory=private_locks).acquire().release()
    assert not alive(sim)
    assert os.path.exists(case_dir(results, "stuck") / "all-secure" / "ns.raw")


STOPPING = """
import time
from hil.interrupts import interrupts_ignored
with interrupts_ignored():
    print("stopping", flush=True)
    time.sleep(30)  # a shutdown that hangs
"""


def test_a_hung_shutdown_still_yields_to_a_third_signal() -> None:
    """While a run stops, two more Ctrl-C / SIGTERM are absorbed (the reports are on their way);
    a third ends the process at once, so a hung shutdown never needs SIGKILL."""
    process = subprocess.Popen(
        [sys.executable, "-c", STOPPING], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == b"stopping\n"
        for sig in (signal.SIGINT, signal.SIGTERM):
            process.send_signal(sig)
            time.sleep(0.2)
            assert process.poll() is None, "gave up its reports on the second signal"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 3
        assert process.stderr is not None
        assert process.stderr.read() == b"hil: stopped before writing the reports\n"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
