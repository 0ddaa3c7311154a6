"""Finding the lines triage reads in a console log, and reading them exactly.

Only a few lines per boot matter (TF-A's banner, Xen's banner, its FF-A messages, a crash). One
C-level regex pass per cache-sized block finds Xen's (``XEN_BODIES``), ``bytes.find`` TF-A's
banner, and ``bytes.count`` numbers the lines in between. Each line found is classified by
``hil.xen.log.parse_line`` - the same reading ``hil run`` uses, so a guest's relayed line is never
Xen's - and the classification is cached by the line's text without Xen's timestamp, because
boots repeat the same lines; a fresh boot's run of Xen lines seen before is replayed whole. A
line longer than ``MAX_LINE`` is read in a window around each hit, so nothing after the cap is
lost."""

from __future__ import annotations

import os
import re
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple, dataclass
from functools import partial
from typing import Any, Protocol

from hil.terminal import plain_text
from hil.triage import compiled
from hil.triage.model import (
    DOM0_CREATE_FAILED,
    Boot,
    Tally,
    Triage,
    Violation,
    boot_parts,
    crash_kind,
    json_text,
)
from hil.xen.log import (
    DAMAGED_STAMP_FFA,
    MAX_LINE,
    TFA_BANNER,
    ConsoleLine,
    MessageKey,
    Stage,
    XenMessage,
    is_ffa_printk_after_damaged_stamp,
    is_uncatalogued_ffa_printk,
    parse_capture_line,
    parse_line,
    xen_prefix,
)

K = MessageKey

# Xen's lines that can say something to triage: its banner, every catalogue message (FF-A's, the
# TEE mediator's, 4.20/4.21's "<vcpu> Cannot retrieve the FFA version") and Xen stopping
# (console.c's panic, bug.c's BUG and ASSERT wordings, domain_build.c's dom0 panics), wherever
# "(XEN) " sits in a line. Each starts, after "(XEN) [stamp] ", with one of these (specific
# enough that Xen's other lines rarely match; the tests render every message through them).
CRASH_STARTS = ("Panic on CPU ", "Xen BUG at ", "Assertion '", "Error creating ")
_HEADS = (
    r"ffa: ",
    r"ARM FF-A ",
    r"Using TEE mediator ",
    r"TEE [Mm]ediator ",
    r"Xen version ",
    *(re.escape(start) for start in CRASH_STARTS),
    # gprintk's lines: the vCPU ("d0v0"), then the text.
    r"\S++ (?:ffa: |Cannot retrieve )",
    # A stamp damaged on the way (it no longer reads as one), then the mediator's words.
    DAMAGED_STAMP_FFA,
)
# hil.xen.log's stamp forms, the usual one first and its loops possessive (each stops where
# the next part starts: the same strings match, faster). Its whitespace is that of one line as a
# terminal shows it: a CR or LF in it ends the text hil.xen.log reads before the stamp does.
_BLANK = rb"[ \t\x0b\x0c]"
_STAMPS = (
    rb"\[(?:" + _BLANK + rb"*+\d++\.\d++"
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})?|[0-9a-fA-F]{16})\] "
)
# One regex pass finds them, the text after the prefix and a valid stamp (as hil.xen.log reads
# stamps) captured to the line end: sre jumps between "(XEN) " literals at C speed and tries the
# short alternation only there. A stamp, once read, is not given back (``?+``): most of Xen's
# lines are not these, and trying each again without its stamp cost more than the rest of the
# pass. Only a line "(XEN) [stamp] Cannot retrieve ..." is then not found, which says nothing
# (the message needs its vCPU first). TF-A's banner is a literal of its own.
XEN_BODIES = re.compile(
    rb"\(XEN\) (?:" + _STAMPS + rb")?+((?:" + "|".join(_HEADS).encode() + rb")[^\n]*+)"
)
TFA_BANNER_LITERAL = TFA_BANNER.encode()
# What a pasted log's wrapped pieces are checked for before they are joined (hil.triage.pasted).
LITERALS: tuple[bytes, ...] = (
    TFA_BANNER_LITERAL,
    b"(XEN)",
    b"Xen version ",
    b"ediator ",
    b"FF-A",
    b"ffa: ",
    b"FFA version",
    *(s.encode() for s in CRASH_STARTS),
)
BLOCK = 1 << 20  # bytes searched at a time: stays in cache across the literal passes
BLOCK_MAX = 4 << 20  # a block ends at a newline unless one line is longer than this
WINDOW_BEFORE = 256  # in an over-long line: how far back a literal's own prefix may be
WINDOW_AFTER = 4096  # ... and how much of the line after it is read
_CACHE_LIMIT = 1 << 14
_UNREPEATABLE = object()  # a run of lines whose effect is not replayed (see Scanner._run)
_LINE_FACTS: dict[bytes, tuple[Any, ...]] = {}  # whole lines, without Xen's stamp
_BODY_FACTS: dict[bytes, tuple[Any, ...]] = {}  # Xen's lines after prefix and stamp
_RUNS: dict[bytes, Any] = {}  # runs of Xen lines into a fresh boot (Replay), by their key
_RENDERS: dict[bytes, Replay] = {}  # the Replays of those that start it (_replay_boots)
_PLAIN_BANNERS: set[bytes] = set()  # lines read as TF-A's banner alone

# Xen's console timestamp after "(XEN) ", exactly as hil.xen.log reads it (valid forms only,
# so a line keyed without it reads the same).
_STAMP = re.compile(
    rb"\(XEN\) \[(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})?|"
    + _BLANK
    + rb"*\d+\.\d+|[0-9a-fA-F]{16})\] "
)
_CRASH_LINES = ("Xen BUG at ", "Assertion '")

# What a line says, for triage: TF-A's banner, a catalogue message, a BUG/ASSERT line (with its
# text), or the panic line (whose reason is the next line).
BANNER = 0
MESSAGE = 1
CRASH = 2
PANIC = 3
UNREADABLE_LINE = 4
Fact = tuple[int, object, object, int]  # kind, what, values, CR-separated part of the line
_PLAIN_BANNER: tuple[Fact, ...] = ((BANNER, None, None, 0),)  # a line that is the banner alone


def _finds(block: bytes, first_own: bool, whole: int) -> compiled.Finds:
    """What to read in ``block`` (``first_own``: it starts a line; ``whole``: where a line found
    whole may end): in one pass by the compiled finder (hil.triage.compiled) when it is
    available, else by the regex, ``bytes.find`` and ``bytes.count``."""
    lib = compiled.library()
    if lib is not None:
        return compiled.lines(lib, block, TFA_BANNER_LITERAL, first_own, MAX_LINE, whole)
    own: list[int] = []
    others: list[int] = []
    keys: list[bytes] = []
    keyed = 0
    for match in XEN_BODIES.finditer(block):
        hit, end = match.span()
        if (block[hit - 1] == 10 if hit else first_own) and end - hit <= MAX_LINE and end <= whole:
            keys.append(match[1] + b"\n")
            keyed += len(keys[-1])
            own += (hit, match.start(1), end, -1, keyed)
        else:
            others += (hit, -1)
    banners: list[int] = []
    own_starts = own[0::5]
    hit = block.find(TFA_BANNER_LITERAL)
    while hit >= 0:
        start = block.rfind(b"\n", 0, hit) + 1
        end = block.find(b"\n", hit)
        end = len(block) if end < 0 else end
        if end - start > MAX_LINE or not (start or first_own):
            start = end = -1  # read as a window (Scanner._general)
        banners += (hit, -1, start, end, bisect_left(own_starts, hit))
        hit = block.find(TFA_BANNER_LITERAL, hit + 1)
    # The newlines before each find, counted from the one before.
    counted: dict[int, int] = {}
    newlines = last = 0
    for point in sorted({*own[0::5], *others[0::2], *banners[0::5]}):
        newlines += block.count(b"\n", last, point)
        counted[point] = newlines
        last = point
    own[3::5] = [counted[start] for start in own[0::5]]
    others[1::2] = [counted[start] for start in others[0::2]]
    banners[1::5] = [counted[start] for start in banners[0::5]]
    newlines += block.count(b"\n", last)
    return compiled.Finds(own, others, banners, newlines, b"".join(keys))


class Buffer(Protocol):
    def __getitem__(self, index: slice, /) -> bytes: ...
    def find(self, sub: bytes, start: int = ..., end: int = ..., /) -> int: ...
    def rfind(self, sub: bytes, start: int = ..., end: int = ..., /) -> int: ...
    def __len__(self) -> int: ...


class FileBuffer:
    """A file read with ``pread`` as if it were ``bytes``: slices, ``find``, ``rfind``. Reading
    copies a block at a time into memory the process owns and frees, where a mapping would
    leave every page it touched counted in the process's memory (and costs more per page)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = os.fstat(fd).st_size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: slice) -> bytes:
        start, stop, _ = index.indices(self.size)
        return os.pread(self.fd, stop - start, start) if stop > start else b""

    def find(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        end = self.size if end is None else min(end, self.size)
        step = 4096  # most searches end within a line; grow the read when they do not
        while start < end:
            stop = min(end, start + step)
            found = self[start:stop].find(sub)
            if found >= 0:
                return start + found
            if stop == end:
                return -1
            start = stop - len(sub) + 1
            step = min(step * 4, BLOCK)
        return -1

    def rfind(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        end = self.size if end is None else min(end, self.size)
        found = self[start:end].rfind(sub)  # only short ranges are searched backwards
        return start + found if found >= 0 else -1


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
            elif is_uncatalogued_ffa_printk(event) or is_ffa_printk_after_damaged_stamp(event):
                facts.append((UNREADABLE_LINE, None, None, index))
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


@dataclass(frozen=True)
class Replay:
    """What a run of Xen's plain lines does to a fresh boot (``Scanner._run``), kept by the
    lines' texts: the boot's fields after it (but ``first_line`` and ``violations``) and its
    violations, each by the place in the run of the line it quotes. When the run starts the
    boot, so that the next TF-A banner ends it, ``parts`` and ``tally`` render that boot whole
    (``boot_parts``, its ``Tally`` as a tuple); else ``parts`` is None. ``tails``: each
    violation's text as ``json_text`` writes it, without its prefix and stamp (and without the
    opening quote): what its line says after them, which is the same in every such run.
    ``head`` and ``steps`` are ``parts`` as the rendering goes: the first part and, for each
    violation, its line's place, its tail and the part after it (a part before a text ends in
    its opening quote)."""

    fields: dict[str, Any]
    violations: tuple[tuple[int, str, Mapping[str, int | str]], ...]
    positions: tuple[int, ...]
    parts: tuple[str, ...] | None
    tally: tuple[int, ...]
    tails: tuple[str, ...]
    head: str = ""
    steps: tuple[tuple[int, str, str], ...] = ()

    @classmethod
    def of(cls, boot: Boot, positions: list[int], bodies: list[bytes]) -> Replay:
        """``boot`` after the run, the place of each violation's line in the run and the body
        of that line."""
        fields = dict(vars(boot))
        del fields["first_line"], fields["violations"]
        # Copies: the boot goes on, and its lists with it (its later lines' SP ids were replayed).
        fields["dropped_sp_ids"] = tuple(boot.dropped_sp_ids)
        fields["evidence"] = tuple(boot.evidence)
        violations = tuple(
            (position, v.kind, v.fields)
            for position, v in zip(positions, boot.violations, strict=True)
        )
        parts = boot_parts(boot) if boot.started else None
        tails = tuple(json_text(plain_text(body))[1:] for body in bodies)
        tally = astuple(Tally.of([boot]))
        head, steps = "", ()
        if parts is not None:
            quoted = [part + '"' for part in parts[:-1]] + [parts[-1]]
            head, steps = quoted[0], tuple(zip(positions, tails, quoted[1:], strict=True))
        return cls(fields, violations, tuple(positions), parts, tally, tails, head, steps)


class Scanner:
    """Feeds one Triage from consecutive parts of a log: ``scan(buf, lo, hi)`` reads the lines
    in ``buf[lo:hi]`` (``lo`` at a line start, ``hi`` after a newline or at the end of the log);
    ``buf`` may reach past ``hi`` so a panic's reason can be read. ``line_of`` maps the lines
    counted here to the lines reported (for a normalised pasted log)."""

    def __init__(self, triage: Triage, line_of: Callable[[int], int] | None = None) -> None:
        self.triage = triage
        self.line = 1  # number of the line at the scan position
        self.line_of = line_of
        # What lines and runs of lines say depends on their text alone: the caches are the
        # process's, so a worker keeps them from one part of a log to the next.
        self._cache = _LINE_FACTS
        self._bodies = _BODY_FACTS
        self._last = -1  # where the last line read started
        self._runs = _RUNS
        self._counted = 0  # block offset up to which lines are counted ...
        self._line_no = 1  # ... and the number of the line there
        self._block_line = 1  # the number of the block's first line
        self._known: dict[int, int] = {}  # newlines before another line read, by its offset
        # The block's plain Xen lines, by index: where each starts, its text after the prefix
        # and a valid stamp starts (its body) and its line ends, the newlines before it, and
        # where its key ends in ``_keys`` (see compiled.Finds: the keys of consecutive lines are
        # one slice). Arrays from the compiled finder: only the lines used become ints.
        self._starts: Sequence[int] = []
        self._body_starts: Sequence[int] = []
        self._ends: Sequence[int] = []
        self._before: Sequence[int] = []
        self._key_ends: Sequence[int] = []
        self._keys = b""

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
        at_end = hi == len(buf)
        first_own = not lo or buf[lo - 1 : lo] == b"\n"  # the block starts a line
        whole = size if at_end else size - 1  # where a line found whole may end
        own, others, banners, newlines, self._keys = _finds(block, first_own, whole)
        # Xen's lines whole in this block, in order (their text after the prefix and a valid
        # stamp is the key their facts are cached by: the stamp changes nothing triage reads) ...
        starts = self._starts = own[0::5]
        self._body_starts = own[1::5]
        self._ends = own[2::5]
        self._before = own[3::5]
        self._key_ends = own[4::5]
        self._known = {}
        # ... and the other lines to read whole or as a window (TF-A's banner, a Xen line with
        # output glued in front, an over-long line): start -> end in the block.
        other: dict[int, int] = {}
        for hit, before in zip(others[0::2], others[1::2], strict=True):
            self._general(buf, block, lo, hit, other, before)
        hits, befores, line_starts, line_ends, owns = (banners[i::5] for i in range(5))
        # The lines holding TF-A's banner read whole: where each starts -> where it ends, the
        # newlines before it and the plain Xen lines before it.
        bounds = zip(line_ends, befores, owns, strict=True)
        banner_lines = dict(zip(line_starts, bounds, strict=True))
        if -1 in banner_lines:  # some read as windows (over-long): one at a time, in order
            del banner_lines[-1]
            for hit, before, start, end in zip(hits, befores, line_starts, line_ends, strict=True):
                if start < 0:
                    self._general(buf, block, lo, hit, other, before)
                else:  # what _general notes for a whole line, found by the finder
                    other[start] = end
                    self._known[start] = before
        else:  # the same, at C speed
            other.update(zip(line_starts, line_ends, strict=True))
            self._known.update(zip(line_starts, befores, strict=True))
        self._counted, self._line_no = 0, self.line
        self._block_line = self.line
        entries = sorted(other)
        index = at = 0
        while at < len(entries):
            start = entries[at]
            stop = bisect_left(starts, start, index)
            self._xen_lines(buf, block, lo, index, stop)
            # A Xen line that is also read whole (TF-A's banner in it) is read once, whole.
            index = stop + 1 if stop < len(starts) and starts[stop] == start else stop
            self._at(buf, block, lo, start, other[start], None)
            at += 1
            if start in banner_lines:
                at, index = self._replay_boots(block, lo, entries, at, index, banner_lines)
        self._xen_lines(buf, block, lo, index, len(starts))
        self.line = self._block_line + newlines

    def _key(self, first: int, stop: int) -> bytes:
        """The key of plain Xen lines ``first`` to ``stop`` (not included): their bodies, each
        followed by a newline (which no body holds)."""
        return self._keys[self._key_ends[first - 1] if first else 0 : self._key_ends[stop - 1]]

    def _own(self, buf: Buffer, block: bytes, lo: int, index: int) -> None:
        """Read plain Xen line ``index``."""
        start, end = self._starts[index], self._ends[index]
        body = block[self._body_starts[index] : end]
        self._at(buf, block, lo, start, end, body, self._before[index])

    def _xen_lines(self, buf: Buffer, block: bytes, lo: int, first: int, stop: int) -> None:
        """Read plain Xen lines ``first`` to ``stop``; once a fresh boot starts, the rest as a
        run."""
        for index in range(first, stop):
            if self.line_of is None and self.triage.current.fresh and stop - index > 1:
                self._run(buf, block, lo, index, stop)
                return
            self._own(buf, block, lo, index)

    def _number(self, block: bytes, start: int, before: int | None = None) -> int:
        """The number of the line starting at ``start`` in the block (counted incrementally);
        ``before``: the newlines in the block before it, when the finder counted them."""
        anchor = max(start, 0)
        if before is None:
            before = self._known.get(anchor)
        known = before if anchor >= self._counted else None
        if known is None:
            self._line_no += block.count(b"\n", self._counted, anchor)
        else:  # counted by the finder
            self._line_no = self._block_line + known
        self._counted = anchor
        return self._line_no

    def _at(
        self,
        buf: Buffer,
        block: bytes,
        lo: int,
        start: int,
        end: int,
        body: bytes | None,
        before: int | None = None,
    ) -> None:
        line = self._number(block, start, before)
        if lo + start > self._last:  # a window may reach back into the block before
            self._last = lo + start
            inside = start >= 0 and end <= len(block)
            raw = block[start:end] if inside else buf[lo + start : lo + end]
            self._line(buf, raw, body, lo + end, line)

    def _run(self, buf: Buffer, block: bytes, lo: int, first: int, stop: int) -> None:
        """Plain Xen lines ``first`` to ``stop``, read into a fresh boot. Boots repeat, so what a
        run does to a fresh boot is kept by its lines' key and replayed (``Replay``): the
        boot's fields, and its violations with the lines they come from."""
        key = self._key(first, stop)
        replay = self._runs.get(key)
        boot = self.triage.current
        starts, ends = self._starts, self._ends
        if replay is None:
            numbers = {}
            for index in range(first, stop):
                self._own(buf, block, lo, index)
                numbers[self._line_no] = index - first
            replay = _UNREPEATABLE
            if self.triage.current is boot and not boot.crashed and b"\r" not in key:
                positions = [numbers[v.line] for v in boot.violations]
                lines = [first + position for position in positions]
                bodies = [block[self._body_starts[i] : ends[i]] for i in lines]
                replay = Replay.of(boot, positions, bodies)
            if len(self._runs) >= _CACHE_LIMIT:
                self._runs.clear()
                _RENDERS.clear()
            self._runs[key] = replay
            if isinstance(replay, Replay) and replay.parts is not None:
                _RENDERS[key] = replay
            return
        if replay is _UNREPEATABLE:
            for index in range(first, stop):
                self._own(buf, block, lo, index)
            return
        vars(boot).update(replay.fields)
        boot.dropped_sp_ids = list(boot.dropped_sp_ids)
        boot.evidence = list(boot.evidence)
        for position, kind, values in replay.violations:
            start = starts[first + position]
            line = self._number(block, start, self._before[first + position])
            text = _text(block[start : ends[first + position]])
            boot.violations.append(Violation(kind, line, text, values))
        self._last = lo + starts[stop - 1]

    def _replay_boots(
        self,
        block: bytes,
        lo: int,
        entries: list[int],
        at: int,
        index: int,
        banner_lines: dict[int, tuple[int, int, int]],
    ) -> tuple[int, int]:
        """Right after a TF-A banner read whole (``entries[at - 1]``): while the lines up to the
        next such banner are a run of Xen's plain lines that ``_run`` has seen read into a fresh
        boot and that started it, render that boot straight from its ``Replay`` (only the line
        numbers and the quoted texts are read) and go on after the banner, which ended it.
        Returns where ``entries`` and the plain lines go on. Only a fresh boot that is not the
        first (a part's first boot may be merged into the boot before it) is rendered so."""
        triage = self.triage
        if triage.templated is None or self.line_of is not None:
            return at, index
        if not triage.boots or not triage.current.fresh:
            return at, index
        starts, ends, before = self._starts, self._ends, self._before
        body_starts, keys, key_ends = self._body_starts, self._keys, self._key_ends
        base = self._block_line
        first_line = triage.current.first_line
        pieces: list[str] = []  # of the boots' JSON, joined at the end
        lines: list[int] = []
        tallies: list[tuple[int, ...]] = []
        while at < len(entries):
            banner = entries[at]
            found = banner_lines.get(banner)
            if found is None:
                break
            end, newlines, stop = found  # stop: the plain Xen lines before the banner
            if stop - index < 2:
                break  # (runs are of two lines or more)
            if starts[stop - 1] == banner:
                break  # the banner is in a Xen line (never read so: it says more than a banner)
            replay = _RENDERS.get(keys[key_ends[index - 1] if index else 0 : key_ends[stop - 1]])
            if replay is None:
                break
            raw = block[banner:end]
            if raw not in _PLAIN_BANNERS:
                if self._line_facts(raw, None) != _PLAIN_BANNER:
                    break
                if len(_PLAIN_BANNERS) >= _CACHE_LIMIT:
                    _PLAIN_BANNERS.clear()
                _PLAIN_BANNERS.add(raw)
            if pieces:
                pieces.append(", ")
            pieces.append(replay.head)
            lines.append(first_line)
            for position, tail, part in replay.steps:
                line = index + position
                start = starts[line]
                lines.append(base + before[line])
                # "(XEN) " and a stamp as the finder reads them are ASCII, without a quote, a
                # backslash or a "%": printable, they are their own text and JSON, and the text
                # is them and the body's, as _text reads the line (nothing in them starts an
                # escape sequence or splits the line). Else (a tab in the stamp) read it whole.
                prefix = block[start : body_starts[line]].decode()
                if prefix.isprintable():
                    pieces += (prefix, tail, part)
                else:  # (its opening quote is the part's)
                    pieces += (json_text(_text(block[start : ends[line]]))[1:], part)
            tallies.append(replay.tally)
            first_line = base + newlines
            index = stop
            at += 1
        if pieces:
            # Numbered from the finder's counts: later lines are numbered the same way, or
            # counted on from where the last line numbered here left off.
            self._last = lo + entries[at - 1]
            triage.replayed("".join(pieces), lines, tallies, first_line)
        return at, index

    def _general(
        self, buf: Buffer, block: bytes, lo: int, hit: int, lines: dict[int, int], before: int
    ) -> None:
        """Note the line around ``hit`` to be read whole (or, over-long, as a window); ``before``:
        the newlines in the block before ``hit``."""
        start = block.rfind(b"\n", 0, hit) + 1
        end = block.find(b"\n", hit)
        if end < 0:
            end = len(block)
        if end - start > MAX_LINE or (start == 0 and lo and buf[lo - 1 : lo] != b"\n"):
            # Over-long: read a window around the hit, from the whole buffer (the line may go
            # on past this block).
            start = self._window_start(buf, lo, start, hit)
            stop = buf.find(b"\n", lo + hit, lo + hit + WINDOW_AFTER)
            stop = stop if stop >= 0 else min(len(buf), lo + hit + WINDOW_AFTER)
            lines.setdefault(start, stop - lo)
        else:
            lines[start] = end  # a whole line: read by its full text
        self._known[start] = before  # no newline between where it is read from and the hit

    def _window_start(self, buf: Buffer, lo: int, start: int, hit: int) -> int:
        """Where to read an over-long line from, relative to ``lo``: the last Xen or guest
        prefix shortly before the literal (its own prefix decides), else a fixed way back."""
        bound = max(start + lo, lo + hit - WINDOW_BEFORE, 0)
        here = lo + hit
        prefix = max(buf.rfind(b"(XEN)", bound, here), buf.rfind(b"(d", bound, here))
        return (prefix if prefix >= 0 else bound) - lo

    def _line_facts(self, raw: bytes, body: bytes | None) -> tuple[Fact, ...]:
        """What the line ``raw`` says (``_facts``), cached by its text without Xen's stamp;
        ``body``: its text after Xen's prefix when the line is plainly Xen's."""
        if body is not None:
            facts = self._bodies.get(body)
            if facts is None:
                # Without its stamp unless the text after it would then read as the stamp
                # (the vCPU of "(XEN) [stamp] [1.5] Cannot retrieve ..."): all lines with
                # such a body have a stamp before it, and its value says nothing to triage.
                key = b"(XEN) " + body
                facts = self._bodies[body] = _facts(raw if _STAMP.match(key) else key)
                if len(self._bodies) >= _CACHE_LIMIT:
                    self._bodies.clear()
            return facts
        stamp = _STAMP.match(raw) if raw[:7] == b"(XEN) [" else None
        key = b"(XEN) " + raw[stamp.end() :] if stamp else raw
        if stamp and _STAMP.match(key):
            key = raw  # the text after the stamp would read as one (see above)
        facts = self._cache.get(key)
        if facts is None:
            facts = _facts(key)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = facts
        return facts

    def _line(self, buf: Buffer, raw: bytes, body: bytes | None, end: int, line: int) -> None:
        """Account the line ``raw`` (number ``line``), which ends at ``end`` in ``buf``;
        ``body``: its text after Xen's prefix when the line is plainly Xen's."""
        facts = self._line_facts(raw, body)
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
            elif kind == UNREADABLE_LINE:
                triage.unreadable(reported, _text(raw, part))
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
