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
    tails: dict[str, list[str]] = {}
    for console, rel in case.console_logs().items():
        try:
            with (run_dir / rel).open("rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(max(0, size - _READ_LIMIT))
                data = handle.read()
        except OSError as exc:
            tails[console] = [f"(console log {rel} unreadable: {exc.strerror or exc})"]
            continue
        text = neutralise(data.decode("utf-8", errors="replace").replace("\r\n", "\n"))
        tails[console] = text.splitlines()[-lines:]
    return tails
