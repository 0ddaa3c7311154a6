"""Printing untrusted text to a terminal (the live progress of a run is in ``hil.progress``).

Console output comes from firmware we are testing and from whatever is on the wire: it may hold
escape sequences that retitle the terminal, move the cursor, hide text or (on some terminals)
write files. Two ways to make it harmless, for two needs:

- ``neutralise`` drops what a terminal would act on and keeps the words: for reading the text.
  ``plain_text`` is the same for console bytes, short of the bidi characters, for parsers.
- ``escape`` shows each non-printable character as a Python escape: for records and tables where
  the evidence of what was sent matters more than reading comfort."""

from __future__ import annotations

import re

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


# What an interactive console keeps besides tab and newline: carriage return and backspace move
# the cursor within the line (CRLF line ends, a shell's line editing, a boot countdown) and drive
# nothing else.
_CONTROLS_BUT_CURSOR = re.compile(r"[\x00-\x07\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def interactive(text: str) -> str:
    """``neutralise`` for a live console: the same, but carriage returns and backspaces stay."""
    if not _UNCLEAN.search(text):
        return text
    text = _SEQUENCES.sub("", text)
    text = _CONTROLS_BUT_CURSOR.sub("", text)
    return _BIDI.sub("", _SURROGATES.sub("\ufffd", text))


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


def columns(rows: list[tuple[str, ...]]) -> list[str]:
    """``rows`` (the first is the header) as aligned text lines; the last column, often long
    free text, is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    ]
