import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.terminal import columns, neutralise

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


def test_columns_line_up_every_column_but_the_free_text_one():
    lines = columns([("NAME", "SPS", "DESCRIPTION"), ("count-63", "63", "many"), ("a", "2", "x y")])
    assert lines == ["NAME      SPS  DESCRIPTION", "count-63  63   many", "a         2    x y"]
