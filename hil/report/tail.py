"""The last lines a board printed, read back from the console logs of a case: where a board
stalled is the first thing someone triaging an infra error wants to see."""

from __future__ import annotations

from pathlib import Path

from hil.results import CaseResult
from hil.terminal import neutralise

TAIL_LINES = 25
# Console logs of a stuck board can be huge (a reboot loop for an hour); the tail is at the end.
_READ_LIMIT = 64 * 1024


def console_tails(case: CaseResult, run_dir: Path, lines: int = TAIL_LINES) -> dict[str, list[str]]:
    """Console name -> its last ``lines`` lines, made inert (escape sequences removed). A missing
    or unreadable log gives one line saying so instead of failing the report."""
    return {
        console: file_tail(run_dir / rel, lines, shown_as=rel)
        for console, rel in case.console_logs().items()
    }


def file_tail(path: Path, lines: int = TAIL_LINES, shown_as: str | None = None) -> list[str]:
    """The last ``lines`` lines of one console log, made inert; unreadable, one line saying so
    (naming it ``shown_as``, default the path)."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - _READ_LIMIT))
            data = handle.read()
    except OSError as exc:
        return [f"(console log {shown_as or path} unreadable: {exc.strerror or exc})"]
    text = neutralise(data.decode("utf-8", errors="replace").replace("\r\n", "\n"))
    return text.splitlines()[-lines:]
