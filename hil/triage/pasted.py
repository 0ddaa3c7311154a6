"""Logs pasted into mail and bug trackers, put back together before they are read.

Three things happen to a console log on its way through mail: lines get quoted (``> ``, nested),
quoted-printable encoding cuts them at 76 columns with a soft break (``=`` at the line end) and
escapes bytes (``=3D`` for ``=``), and clients hard-wrap them at 72-80 columns, at a space (which
the break eats) or mid-word. Each can split a Xen message so that no line holds it whole.

``unpaste`` undoes them conservatively: quote marks go, soft breaks are joined and escapes
decoded only in a text that is quoted-printable, and a line is joined with the next only when the
next line does not start like a console line and the join turns them into a line triage reads (a
catalogue message, a banner, a crash) that neither was alone. Every normalised line keeps the
number of the original line it starts on, so violations point into the file as given."""

from __future__ import annotations

import re
from collections.abc import Callable

from hil.triage.scan import LITERALS, _facts

# A soft break: "=" ending a line of at most 76 columns (RFC 2045), and QP's escapes.
_SOFT_BREAK = re.compile(rb"=\r?\n")
_QP_SIGNS = re.compile(rb"(?m)^.{20,75}=\r?$|=3D|=20\r?$")
_QP_ESCAPE = re.compile(rb"=([0-9A-F]{2})")
_QUOTE = re.compile(rb"(?:>[ \t]?)+")
# How the lines of a console log start; a line that starts otherwise may be a wrapped tail.
_LINE_START = re.compile(
    rb"\(XEN\)|\(d\d+\)|(?:NOTICE|INFO|WARNING|ERROR|VERBOSE): |SPMC: |[IDEWF]/TC: "
    rb"|\[\s*\d+\.\d+\]|HILPROBE |\d{4}-\d\d-\d\dT\d\d:"
)
_MIN_WRAPPED = 40  # a line shorter than this was not wrapped by a 72-80 column client


def _unquote(line: bytes) -> bytes:
    return _QUOTE.sub(b"", line, count=1) if line.startswith(b">") else line


def _is_qp(data: bytes) -> bool:
    return _QP_SIGNS.search(data) is not None


def _decode_qp_line(line: bytes) -> bytes:
    return _QP_ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), line)


def unpaste(data: bytes) -> tuple[bytes, Callable[[int], int]]:
    """``data`` with quoting, quoted-printable and hard wraps undone, and a map from its line
    numbers to the original ones."""
    qp = _is_qp(data)
    lines = data.split(b"\n")
    numbers = list(range(1, len(lines) + 1))
    if qp:  # join soft breaks first: they are exact
        joined: list[bytes] = []
        joined_numbers: list[int] = []
        carry: bytes | None = None
        for number, line in zip(numbers, lines, strict=True):
            body = _unquote(line)
            if carry is not None:
                body = carry + body
            else:
                joined_numbers.append(number)
            stripped = body.rstrip(b"\r")
            if stripped.endswith(b"=") and number < len(lines):
                carry = stripped[:-1]
                continue
            carry = None
            joined.append(_decode_qp_line(body))
        if carry is not None:
            joined.append(_decode_qp_line(carry))
        lines, numbers = joined, joined_numbers
    else:
        lines = [_unquote(line) for line in lines]
    out: list[bytes] = []
    out_numbers: list[int] = []
    index = 0
    while index < len(lines):
        line, number = lines[index], numbers[index]
        index += 1
        while index < len(lines) and len(line.rstrip(b"\r")) >= _MIN_WRAPPED:
            joined_line = _unwrap(line.rstrip(b"\r"), lines[index])
            if joined_line is None:
                break
            line = joined_line
            index += 1
        out.append(line)
        out_numbers.append(number)
    return b"\n".join(out), lambda n: out_numbers[n - 1] if 0 < n <= len(out_numbers) else n


def _unwrap(head: bytes, tail: bytes) -> bytes | None:
    """``head`` joined with the line after it when that line is its wrapped tail, else None."""
    tail = tail.rstrip(b"\r")
    if not tail.strip() or _LINE_START.match(tail.lstrip()):
        return None
    candidates = (head + tail, head + b" " + tail) if not head.endswith(b" ") else (head + tail,)
    if not any(literal in c for literal in LITERALS for c in candidates):
        return None
    if _facts(tail):
        return None  # the next line says something itself: keep it apart
    alone = _facts(head)
    for candidate in candidates:
        facts = _facts(candidate)
        if facts and facts != alone:
            return candidate
    return None
