"""Printing untrusted text to a terminal, and the live progress of a run.

Console output comes from firmware we are testing and from whatever is on the wire: it may hold
escape sequences that retitle the terminal, move the cursor, hide text or (on some terminals)
write files. Two ways to make it harmless, for two needs:

- ``neutralise`` drops what a terminal would act on and keeps the words: for reading the text.
  ``plain_text`` is the same for console bytes, short of the bidi characters, for parsers.
- ``escape`` shows each non-printable character as a Python escape: for records and tables where
  the evidence of what was sent matters more than reading comfort."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from hil.results import CaseResult, RunResult

# String sequences (OSC, DCS, SOS, PM, APC) run to ST or BEL; ESC-introduced and 8-bit forms.
# Without a terminator nothing is dropped beyond the introducer, so garbage can't hide the rest.
_STRING_SEQ = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
_CSI_SEQ = r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"
# Two-byte and nF escapes: ESC, intermediates, final (ESC c reset, ESC ( B charset, ESC 7 ...).
_ESC_SEQ = r"\x1b[\x20-\x2f]*[\x30-\x7e]"
_SEQUENCES = re.compile(f"{_STRING_SEQ}|{_CSI_SEQ}|{_ESC_SEQ}")
# Every C0 control but tab and newline, DEL and C1.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# The bidi overrides/isolates that make a terminal show text in an order other than the bytes
# ("Trojan Source").
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
# Every sequence starts with a character of _CONTROLS: text with none of these is already clean,
# which is most console lines (one scan instead of three on a multi-GiB triage).
_UNCLEAN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def neutralise(text: str) -> str:
    """``text`` with escape sequences removed and other control characters dropped, keeping tab,
    newline and printable Unicode. Lone surrogates (from ``surrogateescape``) become U+FFFD."""
    return _BIDI.sub("", _strip(text))


def plain_text(raw: bytes) -> str:
    """Console bytes as UTF-8 text (bad bytes become U+FFFD) with escape sequences and controls
    removed, as a parser wants them. Bidi characters stay: they are part of what was printed, and
    whoever shows the text to a person escapes or drops them."""
    return _strip(raw.decode("utf-8", "replace"))


def _strip(text: str) -> str:
    if not _UNCLEAN.search(text):
        return text
    text = _SEQUENCES.sub("", text)
    text = _CONTROLS.sub("", text)
    return _SURROGATES.sub("\ufffd", text)


def escape(text: str, keep: str = "") -> str:
    """``text`` with every control, format (bidi, zero-width) or separator character but those
    in ``keep`` shown as its Python escape (``\\x1b``, ``\\u202e``), so nothing in it can drive a
    terminal and nothing is lost."""
    return "".join(
        c if c.isprintable() or c in keep else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


_COLOURS = {"pass": "32", "fail": "31;1", "infra_error": "33;1", "not_run": "2"}


class ProgressPrinter:
    """One line per event of a run, safe to call from the per-board worker threads. Colour only
    when ``stream`` is a TTY, so CI logs and pipes get plain text."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._lock = threading.Lock()

    def case_started(self, board: str, scenario: str) -> None:
        self._emit(f"[{_line(board)}] {_line(scenario)}: started")

    def stage(self, board: str, name: str, seconds: float) -> None:
        self._emit(f"[{_line(board)}]   {_line(name)} at {seconds:.1f} s")

    def case_finished(self, case: CaseResult) -> None:
        verdict = self._verdict(case.verdict.value)
        tail = f" - {_line(case.message)}" if case.message else ""
        retries = f", {case.attempts} attempts" if case.attempts > 1 else ""
        self._emit(
            f"[{case.board}] {case.scenario}: {verdict} ({case.duration_s:.1f} s{retries}){tail}"
        )

    def run_finished(self, run: RunResult) -> None:
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
        summary = ", ".join(f"{n} {v.value}" for v, n in run.counts().items())
        state = "interrupted, " if run.interrupted else ""
        lines.append(f"run {run.run_id}: {state}{summary} -> exit {int(run.exit_code)}")
        self._emit("\n".join(lines))

    def _verdict(self, verdict: str, width: int = 0) -> str:
        label = verdict.upper().ljust(width)
        return f"\x1b[{_COLOURS[verdict]}m{label}\x1b[0m" if self._tty else label

    def _emit(self, text: str) -> None:
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()


def _line(text: str) -> str:
    """Untrusted text made inert and kept to one line."""
    return neutralise(text).replace("\n", " ")
