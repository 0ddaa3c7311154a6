"""Finding the lines triage reads in a console log at memory speed, and reading them exactly.

Only a few lines per boot matter (TF-A's banner, Xen's banner, its FF-A messages, a crash), and
each holds one of ``LITERALS``. C-level ``bytes.find`` jumps from one literal to the next over
cache-sized blocks; ``bytes.count`` numbers the lines in between. Each line found is classified by
``hil.xen.log.parse_line`` - the same reading ``hil run`` uses, so a guest's relayed line is never
Xen's - and the classification is cached by the line's bytes without Xen's timestamp, because
boots repeat the same lines. A line longer than ``MAX_LINE`` is read in a window around each
literal, so nothing after the cap is lost."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Protocol

from hil.terminal import plain_text
from hil.triage.model import DOM0_CREATE_FAILED, Triage, crash_kind
from hil.xen.log import (
    MAX_LINE,
    TFA_BANNER,
    ConsoleLine,
    MessageKey,
    Stage,
    XenMessage,
    parse_capture_line,
    parse_line,
    xen_prefix,
)

K = MessageKey

# Every line triage needs holds one of these (tests/test_triage.py renders each catalogue
# message and crash wording to check it): the boot banners, every FF-A message (``ffa: ``,
# ``ARM FF-A ``, ``... for FF-A``, the TEE mediator lines, 4.20/4.21's ``<vcpu> Cannot retrieve
# the FFA version``), and Xen stopping (console.c's panic, bug.c's BUG and ASSERT wordings, the
# dom0 panic domain_build.c prints without a panic line on a console that joined late).
LITERALS: tuple[bytes, ...] = (
    TFA_BANNER.encode(),
    b"Xen version ",
    b"ediator ",
    b"FF-A",
    b"ffa: ",
    b"FFA version",
    b"Panic on CPU ",
    b"Xen BUG at ",
    b"Assertion '",
    b"Error creating ",
)
BLOCK = 1 << 20  # bytes searched at a time: stays in cache across the literal passes
BLOCK_MAX = 4 << 20  # a block ends at a newline unless one line is longer than this
WINDOW_BEFORE = 256  # in an over-long line: how far back a literal's own prefix may be
WINDOW_AFTER = 4096  # ... and how much of the line after it is read
_CACHE_LIMIT = 1 << 14

# Xen's console timestamp after "(XEN) ", exactly as hil.xen.log reads it (valid forms only,
# so a line keyed without it reads the same).
_STAMP = re.compile(
    rb"\(XEN\) \[(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})?|\s*\d+\.\d+|[0-9a-fA-F]{16})\] "
)
_CRASH_LINES = ("Xen BUG at ", "Assertion '")

# What a line says, for triage: TF-A's banner, a catalogue message, a BUG/ASSERT line (with its
# text), or the panic line (whose reason is the next line).
BANNER = 0
MESSAGE = 1
CRASH = 2
PANIC = 3
Fact = tuple[int, object, object, int]  # kind, what, values, CR-separated part of the line


class Buffer(Protocol):
    def __getitem__(self, index: slice, /) -> bytes: ...
    def find(self, sub: bytes, start: int = ..., end: int = ..., /) -> int: ...
    def rfind(self, sub: bytes, start: int = ..., end: int = ..., /) -> int: ...
    def __len__(self) -> int: ...


def _facts(raw: bytes) -> tuple[Fact, ...]:
    """What one line (no newline) says: one fact per CR-separated part that matters."""
    raw = raw.rstrip(b"\r")
    parts = raw.split(b"\r") if b"\r" in raw else [raw]
    facts: list[Fact] = []
    for index, part in enumerate(parts):
        if not part:
            continue
        event = parse_line(plain_text(part), 0, "console")
        if isinstance(event, XenMessage):
            if event.key is K.PANIC:
                facts.append((PANIC, None, None, index))
            else:
                facts.append((MESSAGE, event.key, event.fields, index))
        elif isinstance(event, ConsoleLine):
            if event.stage is Stage.TFA and event.text.startswith(TFA_BANNER):
                facts.append((BANNER, None, None, index))
            elif event.stage is Stage.XEN and event.text.startswith(_CRASH_LINES):
                facts.append((CRASH, crash_kind(event.text), None, index))
    return tuple(facts)


def _text(raw: bytes, part: int = 0) -> str:
    """The line (its CR-separated ``part``) as a violation quotes it: sanitised, without hil's
    capture prefix."""
    raw = raw.rstrip(b"\r")
    text = plain_text(raw.split(b"\r")[part] if b"\r" in raw else raw)
    capture = parse_capture_line(text) if text[:1].isdigit() else None
    return capture.text if capture is not None else text


def _own_xen_body(raw: bytes) -> str | None:
    """The text after Xen's own prefix when ``raw`` is Xen's line, else None."""
    text = _text(raw)
    prefix = xen_prefix(text)
    if prefix is None or prefix.domain is not None or prefix.start:
        return None
    return text[prefix.end :]


class Scanner:
    """Feeds one Triage from consecutive parts of a log: ``scan(buf, lo, hi)`` reads the lines
    in ``buf[lo:hi]`` (``lo`` at a line start, ``hi`` after a newline or at the end of the log);
    ``buf`` may reach past ``hi`` so a panic's reason can be read. ``line_of`` maps the lines
    counted here to the lines reported (for a normalised pasted log)."""

    def __init__(self, triage: Triage, line_of: Callable[[int], int] | None = None) -> None:
        self.triage = triage
        self.line = 1  # number of the line at the scan position
        self.line_of = line_of
        self._cache: dict[bytes, tuple[Fact, ...]] = {}
        self._last = -1  # where the last line read started

    def scan(self, buf: Buffer, lo: int, hi: int) -> None:
        pos = lo
        while pos < hi:
            end = min(hi, pos + BLOCK)
            if end < hi:
                newline = buf.find(b"\n", end, min(hi, pos + BLOCK_MAX))
                end = newline + 1 if newline >= 0 else min(hi, pos + BLOCK_MAX)
            self._block(buf, pos, end)
            pos = end

    def _block(self, buf: Buffer, lo: int, hi: int) -> None:
        block = buf[lo:hi]
        size = len(block)
        lines: dict[int, tuple[int, int]] = {}  # start in block -> (end, hit) for each line read
        for literal in LITERALS:
            hit = block.find(literal)
            while hit >= 0:
                start = block.rfind(b"\n", 0, hit) + 1
                end = block.find(b"\n", hit)
                if end < 0:
                    end = size
                if end - start > MAX_LINE or (start == 0 and lo and buf[lo - 1 : lo] != b"\n"):
                    # Over-long: read a window around the literal, from the whole buffer (the
                    # line may go on past this block).
                    start = self._window_start(buf, lo, start, hit)
                    stop = buf.find(b"\n", lo + hit, lo + hit + WINDOW_AFTER)
                    stop = stop if stop >= 0 else min(len(buf), lo + hit + WINDOW_AFTER)
                    lines.setdefault(start, (stop - lo, hit))
                    hit = block.find(literal, hit + 1)
                else:
                    lines.setdefault(start, (end, hit))
                    hit = block.find(literal, end + 1) if end < size else -1
        counted, line = 0, self.line
        for start in sorted(lines):
            end, hit = lines[start]
            anchor = max(start, 0)
            line += block.count(b"\n", counted, anchor)
            counted = anchor
            if lo + start > self._last:  # a window may reach back into the block before
                self._last = lo + start
                self._line(buf, lo + start, lo + end, line)
        self.line = line + block.count(b"\n", counted)

    def _window_start(self, buf: Buffer, lo: int, start: int, hit: int) -> int:
        """Where to read an over-long line from, relative to ``lo``: the last Xen or guest
        prefix shortly before the literal (its own prefix decides), else a fixed way back."""
        bound = max(start + lo, lo + hit - WINDOW_BEFORE, 0)
        here = lo + hit
        prefix = max(buf.rfind(b"(XEN)", bound, here), buf.rfind(b"(d", bound, here))
        return (prefix if prefix >= 0 else bound) - lo

    def _line(self, buf: Buffer, start: int, end: int, line: int) -> None:
        raw = buf[start:end]
        stamp = _STAMP.match(raw) if raw[:7] == b"(XEN) [" else None
        key = b"(XEN) " + raw[stamp.end() :] if stamp else raw
        facts = self._cache.get(key)
        if facts is None:
            facts = _facts(key)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = facts
        if not facts:
            return
        reported = self.line_of(line) if self.line_of else line
        triage = self.triage
        for kind, what, values, part in facts:
            if kind == MESSAGE:
                if what is K.DOM0_CREATE_FAILED:
                    triage.crash(DOM0_CREATE_FAILED, reported, _text(raw, part))
                text = partial(_text, raw, part)
                triage.message(what, values, reported, text)  # type: ignore[arg-type]
            elif kind == BANNER:
                triage.banner(reported)
            elif kind == CRASH:
                triage.crash(str(what), reported, _text(raw, part))
            else:
                self._panic(buf, end, line, _text(raw, part))

    def _panic(self, buf: Buffer, end: int, line: int, panic_text: str) -> None:
        """Xen panicked at ``line``: the reason is the next line when it is Xen's own."""
        after = end + 1
        newline = buf.find(b"\n", after, after + MAX_LINE)
        reason = buf[after : newline if newline >= 0 else min(len(buf), after + MAX_LINE)]
        body = _own_xen_body(reason) if reason else None
        at = line + 1 if body is not None else line
        reported = self.line_of(at) if self.line_of else at
        if body is not None:
            self.triage.crash(crash_kind(body), reported, _text(reason))
        else:
            self.triage.crash(crash_kind(""), reported, panic_text)
