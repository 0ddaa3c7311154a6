import io
import re
import threading
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.results import CaseResult, RunResult, Verdict
from hil.terminal import ProgressPrinter, neutralise

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.mark.parametrize(
    ("hostile", "shown"),
    [
        ("\x1b]0;owned\x07boot", "boot"),  # OSC title, BEL-terminated
        ("\x1b]2;owned\x1b\\boot", "boot"),  # OSC title, ST-terminated
        ("\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[2J\x1b[1;1Hclear", "clear"),
        ("\x1b[?1049h\x1b[8mhidden", "hidden"),
        ("\x1bPq#0;2;0;0;0\x1b\\sixel", "sixel"),  # DCS
        ("\x9b31m8-bit\x9d0;t\x9c", "8-bit"),  # C1 CSI and OSC
        ("\x1bcreset", "reset"),
        ("\x1b(Bcharset", "charset"),
        ("bell\x07back\x08\x08ret\rnul\x00del\x7f", "bellbackretnuldel"),
        ("\u202eevil\u202c", "evil"),  # bidi override
    ],
)
def test_hostile_sequences_are_removed_and_the_text_kept(hostile, shown):
    assert neutralise(hostile) == shown


def test_printable_text_tabs_newlines_and_unicode_survive():
    text = "(XEN) ffa: Secure partition with id 0x0042\tcannot be used\nµs → 😀 日本"
    assert neutralise(text) == text


def test_unterminated_string_sequence_hides_nothing_after_it():
    # A real terminal would swallow the rest waiting for ST; we show it instead.
    assert neutralise("\x1b]0;title without end\nnext line") == "0;title without end\nnext line"


def test_lone_surrogates_from_undecodable_bytes_become_replacement_chars():
    raw = b"ok\xff\xfe".decode("utf-8", errors="surrogateescape")
    assert neutralise(raw) == "ok\ufffd\ufffd"


@given(st.text(alphabet=st.sampled_from("\x1b\x07\x9b\x9c\x9d[]0;?P\\mAa\t\n\r\x00\x85 é")))
def test_output_never_carries_escapes_or_controls(text):
    out = neutralise(text)
    assert not UNSAFE.search(out)


@given(st.text())
def test_arbitrary_text_is_safe_and_neutralising_is_idempotent(text):
    out = neutralise(text)
    assert not UNSAFE.search(out)
    assert neutralise(out) == out


def finished(verdict: Verdict, message: str = "", attempts: int = 1, board: str = "juno-r2"):
    return CaseResult(board, "bit15-ids", verdict, T0, 12.34, message, attempts=attempts)


def test_progress_is_plain_text_when_not_a_tty():
    out = io.StringIO()
    printer = ProgressPrinter(out)
    printer.case_started("juno-r2", "bit15-ids")
    printer.stage("juno-r2", "bl31", 2.56)
    printer.case_finished(finished(Verdict.FAIL, "probe saw 3 SPs", attempts=2))
    assert out.getvalue().splitlines() == [
        "[juno-r2] bit15-ids: started",
        "[juno-r2]   bl31 at 2.6 s",
        "[juno-r2] bit15-ids: FAIL (12.3 s, 2 attempts) - probe saw 3 SPs",
    ]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tty_gets_colour_but_console_text_still_cannot_inject_sequences():
    out = Tty()
    ProgressPrinter(out).case_finished(finished(Verdict.INFRA_ERROR, "\x1b]0;pwn\x07stalled"))
    line = out.getvalue()
    assert "\x1b[33;1mINFRA_ERROR\x1b[0m" in line
    assert line.endswith(" - stalled\n")
    assert "pwn" not in line and "\x07" not in line


def test_summary_table_lines_up_and_ends_with_the_exit_code():
    cases = [
        finished(Verdict.PASS, board="fvp-base-revc"),
        finished(Verdict.FAIL, "2 lines differ", board="juno-r2"),
    ]
    out = Tty()
    ProgressPrinter(out).run_finished(RunResult("r-1", "lab.toml", T0, T0, cases))
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue()).splitlines()
    header, rows, last = lines[1], lines[2:4], lines[4]
    verdict_col = header.index("VERDICT")
    assert [row[verdict_col:].split()[0] for row in rows] == ["PASS", "FAIL"]
    assert rows[1].endswith("12.3  2 lines differ")
    assert last == "run r-1: 1 pass, 1 fail, 0 infra_error, 0 not_run -> exit 1"


def test_lines_from_concurrent_boards_never_interleave():
    out = io.StringIO()
    printer = ProgressPrinter(out)
    boards = [f"board{i}" for i in range(8)]

    def work(board: str) -> None:
        for n in range(50):
            printer.stage(board, f"stage{n}", n)

    threads = [threading.Thread(target=work, args=(b,)) for b in boards]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 400
    assert all(re.fullmatch(r"\[board\d\]   stage\d+ at \d+\.0 s", line) for line in lines)
