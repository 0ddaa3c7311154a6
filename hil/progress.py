"""What ``hil run`` shows while it works: one line per finished case (a FAIL with the first lines
of its diff), a status line per board on a terminal, and the summary at the end.

On a TTY the bottom of the screen holds one live line per busy board (its case, the boot stage
it waits for and for how long) that finished-case lines scroll above. Anywhere else (CI logs,
pipes) there is no cursor movement: a plain line when a boot attempt fails, and one every
``heartbeat_s`` while a stage keeps a board waiting. Every method is safe to call from the
per-board worker threads; all console-derived text is made inert first."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from hil.boot import BootProgress
from hil.config import display_path
from hil.errors import ExitCode
from hil.results import DIFF_ROLE, CaseResult, RunResult, Verdict
from hil.terminal import neutralise

DIFF_LINES = 40  # diff lines a FAIL shows in the terminal; the rest is in the case's diff file
HEARTBEAT_S = 30.0
REFRESH_S = 0.5

_COLOURS = {"pass": "32", "fail": "31;1", "infra_error": "33;1", "not_run": "2"}
_DIFF_COLOURS = {"-": "31", "+": "32", "@": "36"}
VERDICT_WORDS = {
    Verdict.PASS: "pass",
    Verdict.FAIL: "fail",
    Verdict.INFRA_ERROR: "infra error",
    Verdict.NOT_RUN: "not run",
}


@dataclass
class _Busy:
    """A board in the middle of a case."""

    scenario: str
    case_t0: float
    stage: str = "power-on"
    attempt: int = 1
    stage_t0: float = 0.0
    beats: int = 0  # heartbeat lines printed for this stage


class ProgressPrinter:
    def __init__(
        self,
        stream: TextIO,
        *,
        heartbeat_s: float = HEARTBEAT_S,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._heartbeat_s, self._refresh_s, self._clock = heartbeat_s, refresh_s, clock
        self._lock = threading.Lock()
        self._busy: dict[str, _Busy] = {}
        self._drawn = 0  # status lines on screen below the log
        self._run_dir: Path | None = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- events from the runner ------------------------------------------------------------------

    def run_started(self, run_dir: Path) -> None:
        """Remember where the run's files go and start refreshing the status lines."""
        self._run_dir = run_dir
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_loop, name="progress", daemon=True)
        self._ticker.start()

    def case_started(self, board: str, scenario: str) -> None:
        now = self._clock()
        with self._lock:
            self._busy[board] = _Busy(scenario, now, stage_t0=now)
        if not self._tty:
            self._emit(f"[{_line(board)}] {_line(scenario)}: started")

    def boot_progress(self, board: str, scenario: str, event: BootProgress) -> None:
        """The boot of ``board`` waits for a new stage, or one attempt of it failed."""
        now = self._clock()
        with self._lock:
            busy = self._busy.get(board)
            if busy is not None:
                busy.attempt = event.attempt
                if event.stage is not None:
                    busy.stage, busy.stage_t0, busy.beats = event.stage, now, 0
                elif event.error is not None:
                    # Until the next attempt power-cycles the board: the retry back-off.
                    busy.stage, busy.stage_t0, busy.beats = "retry", now, 0
        if event.error is not None:
            self._emit(
                f"[{_line(board)}] {_line(scenario)}: boot attempt {event.attempt} failed: "
                f"{_line(event.error)}"
            )

    def case_finished(self, case: CaseResult) -> None:
        with self._lock:
            self._busy.pop(case.board, None)
        verdict = self._verdict(case.verdict.value)
        tail = f" - {_line(case.message)}" if case.message else ""
        retries = f", {case.attempts} attempts" if case.attempts > 1 else ""
        lines = [
            f"[{case.board}] {case.scenario}: {verdict} ({case.duration_s:.1f} s{retries}){tail}"
        ]
        if case.verdict is Verdict.FAIL and case.diff:
            lines += self._diff_lines(case)
        self._emit("\n".join(lines))

    def run_finished(self, run: RunResult, report: Path | None = None) -> None:
        self.close()
        header = ("BOARD", "SCENARIO", "VERDICT", "SECONDS")
        rows = [
            (c.board, c.scenario, c.verdict.value, f"{c.duration_s:.1f}", _line(c.message))
            for c in run.cases
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        titles = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
        lines = ["", f"{titles}  MESSAGE"]
        for board, scenario, verdict, seconds, message in rows:
            # Pad before colouring: escape codes must not count towards the column width.
            cells = (
                board.ljust(widths[0]),
                scenario.ljust(widths[1]),
                self._verdict(verdict, widths[2]),
                seconds.rjust(widths[3]),
                message,
            )
            lines.append("  ".join(cells).rstrip())
        if report is not None:
            lines.append(f"report: {display_path(report)}")
        lines.append(outcome_line(run))
        self._emit("\n".join(lines))

    def close(self) -> None:
        """Stop refreshing and take the status lines off the screen."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._lock:
            self._busy.clear()
            self._clear_status()
            self._stream.flush()

    # -- drawing ---------------------------------------------------------------------------------

    def tick(self) -> None:
        """Redraw the status lines (TTY), or print the heartbeats that are due (not a TTY)."""
        now = self._clock()
        if self._tty:
            with self._lock:
                self._clear_status()
                self._draw_status(now)
                self._stream.flush()
            return
        due = []
        with self._lock:
            for board, busy in self._busy.items():
                waited = now - busy.stage_t0
                if waited >= (busy.beats + 1) * self._heartbeat_s:
                    busy.beats = int(waited // self._heartbeat_s)
                    due.append(
                        f"[{_line(board)}] {_line(busy.scenario)}: waiting for stage "
                        f"{_line(busy.stage)} for {waited:.0f} s{_attempt(busy)}"
                    )
        for line in due:
            self._emit(line)

    def _tick_loop(self) -> None:
        while not self._stop.wait(self._refresh_s):
            self.tick()

    def _status_lines(self, now: float) -> list[str]:
        width = max(20, shutil.get_terminal_size().columns - 1)
        lines = []
        for board, busy in sorted(self._busy.items()):
            line = (
                f"  {_line(board)}  {_line(busy.scenario)}: {_line(busy.stage)} "
                f"{now - busy.stage_t0:.1f} s{_attempt(busy)}, case {now - busy.case_t0:.1f} s"
            )
            # A wrapped status line would throw the cursor-up arithmetic off by a line.
            lines.append(line[:width])
        return lines

    def _draw_status(self, now: float) -> None:
        lines = self._status_lines(now)
        for line in lines:
            self._stream.write(f"\x1b[2m{line}\x1b[0m\n")
        self._drawn = len(lines)

    def _clear_status(self) -> None:
        if self._drawn:
            # To column 0 of the first status line, then erase to the end of the screen.
            self._stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _emit(self, text: str) -> None:
        with self._lock:
            self._clear_status()
            self._stream.write(text + "\n")
            if self._tty and not self._stop.is_set():
                self._draw_status(self._clock())
            self._stream.flush()

    def _verdict(self, verdict: str, width: int = 0) -> str:
        label = verdict.upper().ljust(width)
        return f"\x1b[{_COLOURS[verdict]}m{label}\x1b[0m" if self._tty else label

    def _diff_lines(self, case: CaseResult) -> list[str]:
        shown = [self._diff_line(_line(d)) for d in case.diff[:DIFF_LINES]]
        where = case.artifacts.get(DIFF_ROLE)
        path = display_path(self._run_dir / where) if where and self._run_dir else None
        rest = len(case.diff) - DIFF_LINES
        if rest > 0:
            shown.append(f"    ... {rest} more lines in {path or 'the report'}")
        elif path:
            shown.append(f"    (diff saved in {path})")
        return shown

    def _diff_line(self, line: str) -> str:
        colour = _DIFF_COLOURS.get(line[:1]) if line[:3] not in ("---", "+++") else "1"
        return f"    \x1b[{colour}m{line}\x1b[0m" if self._tty and colour else f"    {line}"


def outcome_line(run: RunResult) -> str:
    """The run's last line: every verdict count, the exit code and why, so a run with both
    failed checks and infra errors shows both whatever its exit code."""
    counts = run.counts()
    summary = ", ".join(f"{n} {VERDICT_WORDS[v]}" for v, n in counts.items())
    unjudged = counts[Verdict.INFRA_ERROR] + counts[Verdict.NOT_RUN]
    state = "interrupted, " if run.interrupted else ""
    code = run.exit_code
    if code is ExitCode.CHECK_FAILED:
        why = "a check failed"
        if unjudged:
            why += f"; {unjudged} not judged (infra error or not run)"
    elif code is ExitCode.INFRA:
        why = "interrupted" if run.interrupted and not unjudged else f"{unjudged} not judged"
    else:
        why = "all passed"
    return f"run {run.run_id}: {state}{summary} -> exit {int(code)}: {why}"


def _attempt(busy: _Busy) -> str:
    return f" (attempt {busy.attempt})" if busy.attempt > 1 else ""


def _line(text: str) -> str:
    """Untrusted text made inert and kept to one line."""
    return neutralise(text).replace("\n", " ")
