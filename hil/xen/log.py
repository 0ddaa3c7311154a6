"""Console output -> typed events. Bytes go in, in chunks of any size; each complete line comes out
as one event (a lone CR splits a line into several events sharing its line number). Memory stays
constant: only the unfinished last line is kept, and it is capped at ``MAX_LINE`` bytes.

With ``markers`` set, lines containing none of them are only counted, never decoded: that is the
fast path ``hil triage`` uses on multi-GiB logs (C-speed ``bytes.find``/``count`` per chunk).
``XEN_MARKERS`` selects the lines that can hold a catalogue message (``hil.xen.messages``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from string import Formatter
from typing import BinaryIO

from hil.probe import parse_probe_line
from hil.terminal import plain_text
from hil.xen.messages import BY_KEY, MESSAGES, Level, Message

MAX_LINE = 64 * 1024
CHUNK_SIZE = 1024 * 1024

Marker = bytes | re.Pattern[bytes]


def _leading_text(msg: Message) -> str:
    """Regex for how ``msg`` starts: its first literal word, after ``\\S+`` for a leading field
    (the vCPU or domain some messages begin with)."""
    head = ""
    for literal, name, _, _ in Formatter().parse(msg.template):
        if literal:
            stripped = literal.lstrip(" ")
            word = literal[: len(literal) - len(stripped)] + stripped.split(" ", 1)[0]
            return head + re.escape(word + " " if " " in stripped else word)
        head += r"\S+" if name is not None else ""
    return head


# The fast path's needle: a Xen line ("(XEN) ", optional stamp) whose text starts the way a
# catalogue message does. One regex pass finds them all: sre scans for the literal "(XEN) " at
# C speed and tries the short alternation only there.
XEN_MESSAGE_LINES: re.Pattern[bytes] = re.compile(
    rb"\(XEN\) (?:\[[^\]\n]*\] )?(?:"
    + "|".join(dict.fromkeys(_leading_text(m) for m in MESSAGES)).encode()
    + rb")"
)

MessageKey = StrEnum("MessageKey", {key.upper(): key for key in BY_KEY}, module=__name__)
MessageKey.__doc__ = "One member per catalogue message (hil.xen.messages), e.g. SP_UNUSABLE."


class Stage(StrEnum):
    """Who printed a line, from its prefix."""

    XEN = "xen"
    GUEST = "guest"  # "(dN) ": a domain's output relayed by Xen
    TFA = "tf-a"
    SPMC = "spmc"
    LINUX = "linux"  # unprefixed "[    0.000000] ": dom0's kernel
    OTHER = "other"  # anything else unprefixed (dom0 user space, boot loaders, noise)


@dataclass(frozen=True, slots=True)
class XenTimestamp:
    """A ``console_timestamps`` stamp as printed: ``boot`` "[    1.234567]", ``date``/``datems``
    "[2026-11-24 10:00:00(.123)]" wall clock, or ``raw`` "[00000000031c4a07]" (the cycle counter,
    also what ``boot`` prints before the clock runs). Decoded on demand: most are never read."""

    text: str

    @property
    def since_boot(self) -> float | None:
        return float(self.text) if "." in self.text and "-" not in self.text else None

    @property
    def wallclock(self) -> datetime | None:
        return datetime.fromisoformat(self.text) if "-" in self.text else None

    @property
    def cycles(self) -> int | None:
        return int(self.text, 16) if "." not in self.text and "-" not in self.text else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    line: int  # 1-based, counting "\n" in the stream
    raw: str  # the sanitised line, host-capture prefix removed
    console: str
    xen_time: XenTimestamp | None = None
    host_time: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleLine(Event):
    """A line that is not a catalogue message or probe line."""

    stage: Stage
    text: str  # after the stage prefix
    domain: int | None = None
    level: str | None = None  # TF-A's NOTICE/INFO/WARNING/ERROR/VERBOSE


@dataclass(frozen=True, slots=True, kw_only=True)
class XenMessage(Event):
    """A catalogue message printed by Xen. Match it with
    ``case XenMessage(key=MessageKey.SP_UNUSABLE, fields={"id": sp_id})``."""

    key: MessageKey
    fields: Mapping[str, int | str]
    level: Level


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeLine(Event):
    """A ``HILPROBE`` line; ``domain`` is 0 for dom0's unprefixed output."""

    domain: int
    kind: str
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class CaptureLine:
    """One line of the controller's timestamped console.log."""

    host_time: datetime
    console: str
    text: str


_CAPTURE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?) (\S+) \| ")


def format_capture_line(host_time: datetime, console: str, text: str) -> str:
    """The console.log line for ``text`` (no line ending); ``parse_capture_line`` reverses it.
    Microseconds always: every stamp has the same width, so the log's columns line up."""
    return f"{host_time.isoformat(timespec='microseconds')} {console} | {text}"


def parse_capture_line(line: str) -> CaptureLine | None:
    match = _CAPTURE.match(line)
    if not match:
        return None
    try:
        when = datetime.fromisoformat(match[1])
    except ValueError:
        return None
    return CaptureLine(when, match[2], line[match.end() :])


_TS = r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})?|\s*\d+\.\d+|[0-9a-fA-F]{16})\]"
_XEN = re.compile(rf"\(XEN\)(?: {_TS})?(?: |$)")
# Xen's console prefixes: its own "(XEN) [stamp] ", or "(dN) [stamp] " for guest N's console_io.
_PREFIX = re.compile(rf"\(XEN\)(?: {_TS})?(?: |$)|\(d(\d+)\)(?: {_TS})?(?: |$)")
# After "(XEN) ": a dom0less guest's console (vpl011) as Xen relays it.
_DOM = re.compile(r"DOM(\d+): ")
# Where a relayed guest line starts, as a regex fragment (no groups) for patterns over raw text.
RELAY_PREFIX = r"\(d\d+\)|\(XEN\)(?: \[[^\]\n]*\])? DOM\d+: "
# Panics, per world, as regexes over a console's text (MULTILINE). A line a guest's output relays
# ("(d1) Kernel panic", "(XEN) DOM1: ...") is the guest's, never the board panicking: the text must
# come before any Xen console prefix, or be Xen's own line (its first prefix "(XEN) "). Written
# with possessive loops that only stop at a "(" or a keyword's first letter: linear in the text.
_ANY_PREFIX = r"\(XEN\)|\(d\d+\)"


def _first_in_line(keywords: tuple[str, ...]) -> str:
    """A line in which one of ``keywords`` comes before any of Xen's console prefixes."""
    starts = "".join(sorted({re.escape(k[0]) for k in keywords} | {r"\("}))
    free = f"[^{starts}\\n]*+"
    other = f"(?!{_ANY_PREFIX}|{'|'.join(keywords)})[{starts}]"
    return f"^{free}(?:{other}{free})*+(?:{'|'.join(keywords)})"


_TFA_PANICS = ("PANIC at PC : ", "Unhandled Exception")
NORMAL_WORLD_PANICS: tuple[str, ...] = (
    # Xen's own line: its first prefix is "(XEN) " and the panic follows it.
    r"^[^(\n]*+(?:\((?!XEN\)|d\d+\))[^(\n]*+)*+"
    r"\(XEN\)(?: \[[^\]\n]*\])? (?:Panic on CPU|Xen BUG at)",
    # dom0 is the hardware domain: its kernel's lines reach the console unprefixed; TF-A's boot
    # images print here too.
    _first_in_line(("Kernel panic", "SError Interrupt", *_TFA_PANICS)),
)
# The secure world's own panic lines, at a line start: TF-A's runtime, Hafnium's panic(), OP-TEE's
# core panic. An SP's log line that merely mentions an SError is not one.
SECURE_WORLD_PANICS: tuple[str, ...] = (
    f"^(?:{'|'.join(_TFA_PANICS)})",
    r"^Panic: ",
    r"^[EF]/TC:[^\n]*\bPanic\b",
)
# TF-A's first line on every cold boot: a boot starts here.
TFA_BANNER = "Booting Trusted Firmware"
# The banner as it ends a line cut short by a reboot: where the new boot's first line starts.
_BANNER = re.compile(r"(?:NOTICE: +)?" + re.escape(TFA_BANNER))
_TFA = re.compile(r"(NOTICE|INFO|WARNING|ERROR|VERBOSE): +")
_SPMC = re.compile(r"SPMC: |[IDEWF]/TC: ")
_LINUX = re.compile(r"\[\s*\d+\.\d+\] ")


def _first_word(msg: Message) -> str | None:
    head = msg.template.split(" ", 1)[0]
    return None if "{" in head else head


# Candidates per first word of a line, in catalogue order (the order ``identify`` tries), so a
# line is matched against a few templates instead of all of them.
_FIELD_FIRST = tuple(m for m in MESSAGES if _first_word(m) is None)
_CANDIDATES: dict[str, tuple[Message, ...]] = {
    word: tuple(m for m in MESSAGES if _first_word(m) in (word, None))
    for word in {_first_word(m) for m in MESSAGES} - {None}
    if word is not None
}


@lru_cache(maxsize=4096)  # boots repeat: the same message texts recur in a long log
def identify(body: str) -> tuple[MessageKey, dict[str, int | str], Level] | None:
    """Like ``hil.xen.messages.identify``, for a line's text after ``(XEN) [stamp] ``."""
    for msg in _CANDIDATES.get(body.split(" ", 1)[0], _FIELD_FIRST):
        values = msg.match(body)
        if values is not None:
            return MessageKey(msg.key), values, msg.level
    return None


@dataclass(frozen=True, slots=True)
class XenPrefix:
    """Xen's console prefix on a line: where it is and whose text follows it."""

    start: int  # > 0: other output glued in front (no newline between them on the wire)
    end: int  # where the text after the prefix starts
    domain: int | None  # None: Xen's own line; N: guest N's output, relayed by Xen
    stamp: XenTimestamp | None


def xen_prefix(text: str) -> XenPrefix | None:
    """The first of Xen's console prefixes in ``text``: ``(XEN) `` for Xen's own line, ``(dN) ``
    or ``(XEN) DOMn: `` for guest N's output Xen relays (console_io, a dom0less guest's vpl011).
    The first prefix decides whose line it is, so whatever a guest prints (``(XEN) ...``, a
    panic, a probe line) stays the guest's, and noise glued in front changes nothing."""
    match = _PREFIX.search(text)
    if match is None:
        return None
    if match[2] is not None:
        stamp = XenTimestamp(match[3].strip()) if match[3] else None
        return XenPrefix(match.start(), match.end(), int(match[2]), stamp)
    stamp = XenTimestamp(match[1].strip()) if match[1] else None
    if dom := _DOM.match(text, match.end()):
        return XenPrefix(match.start(), dom.end(), int(dom[1]), stamp)
    return XenPrefix(match.start(), match.end(), None, stamp)


# A printk of the FF-A mediator's (its messages start "ffa: ", "ARM FF-A " or "<domain>: ffa: ").
# A debug build's diagnostics (gdprintk: "<file>:<line>:<vcpu> ffa: ...") are not among them.
_FFA_PRINTK = re.compile(r"^(?:d\d+(?:v\d+)?: )?ffa: |^ARM FF-A ")


# The same printk after a console stamp damaged on the way ("(XEN) [    0.1~3520] ffa: ..."): the
# stamp no longer reads as one, so the line's text starts with what is left of it. Not a debug
# build's diagnostic ("<file>:<line>:<vcpu> ffa: ...").
DAMAGED_STAMP_FFA = r"\[[^\n]{0,30}?(?:ffa: |ARM FF-A )"
_DAMAGED_STAMP_FFA = re.compile(DAMAGED_STAMP_FFA)
_DIAGNOSTIC = re.compile(r":\d+:d\d+v\d+ ffa: ")


def is_ffa_printk_after_damaged_stamp(event: Event) -> bool:
    """A line of Xen's own whose console stamp was damaged, followed by FF-A mediator words:
    it may have been any of the mediator's messages, a violation too (triage cannot call such
    a boot clean)."""
    return (
        isinstance(event, ConsoleLine)
        and event.stage is Stage.XEN
        and event.domain is None
        and _DAMAGED_STAMP_FFA.match(event.text) is not None
        and _DIAGNOSTIC.search(event.text) is None
    )


_STAMP_SLACK = 32  # longer than any stamp Xen prints: where the text after a damaged one starts


def reads_after_damaged_stamp(event: Event) -> bool:
    """A line of Xen's own that starts with a console stamp no Xen prints (a byte of it
    damaged on the way, so the prefix took none) and then reads as one of Xen's catalogue
    messages or FF-A printks: a damaged Xen line, which ``hil run`` cannot judge. Also a line
    whose ``(XEN) `` prefix has one byte damaged ('(XEN)"Using TEE ...'), which is then no Xen
    line at all."""
    if not isinstance(event, ConsoleLine) or event.domain is not None:
        return False
    if event.stage is not Stage.XEN:
        head = event.raw[: len(_OWN_PREFIX)]
        damaged = sum(a != b for a, b in zip(head, _OWN_PREFIX, strict=False)) == 1
        return len(head) == len(_OWN_PREFIX) and damaged and _reads_as_xen(event.raw[len(head) :])
    return event.text.startswith("[") and _reads_as_xen(event.text)


_OWN_PREFIX = "(XEN) "


def _reads_as_xen(text: str) -> bool:
    """Whether ``text`` (what followed Xen's prefix) is one of Xen's catalogue messages or FF-A
    printks, after a console stamp whole or damaged."""
    for cut in range(min(len(text), _STAMP_SLACK)):
        rest = text[cut:].lstrip(" ]") if cut else text
        if rest and (identify(rest) is not None or _FFA_PRINTK.match(rest) is not None):
            return True
        if not text.startswith("["):
            return False  # no stamp to look past
    return False


def is_uncatalogued_ffa_printk(event: Event) -> bool:
    """A line of Xen's own worded like the FF-A mediator's printks but in no catalogue message:
    a Xen saying more than its profile (hil run compares it), or a damaged or cut one of its
    messages (triage cannot call such a boot clean)."""
    return (
        isinstance(event, ConsoleLine)
        and event.stage is Stage.XEN
        and event.domain is None
        and _FFA_PRINTK.search(event.text) is not None
    )


def starts_boot(event: Event) -> bool:
    """Whether ``event`` is TF-A's cold-boot banner: where a boot begins."""
    return (
        isinstance(event, ConsoleLine)
        and event.stage is Stage.TFA
        and event.text.startswith(TFA_BANNER)
    )


def split_at_boot(text: str) -> list[str]:
    """``text`` as the lines it holds when a reboot cut one short: the part before TF-A's banner
    (what the board was printing when it reset, or noise) and the banner's line, so that two
    boots never merge into one line, whatever the first one was printing. A line Xen relays
    from a guest stays whole: a guest printing the banner is not a boot."""
    if TFA_BANNER not in text:
        return [text]
    cuts = [m.start() for m in _BANNER.finditer(text) if m.start() > 0]
    if not cuts:
        return [text]
    prefix = xen_prefix(text[: cuts[0]])
    if prefix is not None and prefix.domain is not None:
        return [text]
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def parse_line(text: str, line: int, console: str) -> Event:
    """The event for one sanitised line without its line ending."""
    host_time = None
    if text[:1].isdigit() and (capture := parse_capture_line(text)) is not None:
        host_time, console, text = capture.host_time, capture.console, capture.text
    common = {"line": line, "raw": text, "console": console, "host_time": host_time}
    prefix = xen_prefix(text)
    if prefix is not None and prefix.domain is not None:
        body, stamp, domain = text[prefix.end :], prefix.stamp, prefix.domain
        if (probe := parse_probe_line(body)) is not None:
            kind, fields = probe
            return ProbeLine(**common, xen_time=stamp, domain=domain, kind=kind, fields=fields)
        return ConsoleLine(**common, xen_time=stamp, stage=Stage.GUEST, text=body, domain=domain)
    if prefix is not None:
        body, stamp = text[prefix.end :], prefix.stamp
        if (found := identify(body)) is not None:
            # Also with output glued in front (a burst, another CPU): the message is whole from
            # its prefix on, as the triage fast path and probe lines read it.
            key, values, level = found
            return XenMessage(**common, xen_time=stamp, key=key, fields=dict(values), level=level)
        if prefix.start == 0:
            return ConsoleLine(**common, xen_time=stamp, stage=Stage.XEN, text=body)
        # Anything else after glued output stays the line it appears to be.
    if (probe := parse_probe_line(text)) is not None:
        return ProbeLine(**common, domain=0, kind=probe[0], fields=probe[1])
    if match := _TFA.match(text):
        return ConsoleLine(**common, stage=Stage.TFA, text=text[match.end() :], level=match[1])
    if (banner := text.find(TFA_BANNER)) >= 0:
        # Noise glued in front of the banner must not merge two boots into one.
        return ConsoleLine(**common, stage=Stage.TFA, text=text[banner:])
    if match := _SPMC.match(text):
        return ConsoleLine(**common, stage=Stage.SPMC, text=text[match.end() :])
    if match := _LINUX.match(text):
        return ConsoleLine(**common, stage=Stage.LINUX, text=text[match.end() :])
    return ConsoleLine(**common, stage=Stage.OTHER, text=text)


class LogParser:
    """Incremental parser: ``feed`` chunks, then ``close`` for a last unterminated line."""

    def __init__(self, console: str = "console", markers: Iterable[Marker] | None = None) -> None:
        self.console = console
        self.markers = tuple(markers) if markers is not None else None
        self.lines = 0  # complete lines seen so far
        self._pending = b""
        self._overlong = False  # dropping the rest of a line that exceeded MAX_LINE

    def feed(self, data: bytes) -> list[Event]:
        if self._overlong:
            newline = data.find(b"\n")
            if newline < 0:
                return []
            data = data[newline:]
            self._overlong = False
        buf = self._pending + data if self._pending else data
        end = buf.rfind(b"\n") + 1
        events = self._scan(buf, end) if end else []
        self._keep(buf[end:] if end < len(buf) else b"")
        return events

    def close(self) -> list[Event]:
        tail, self._pending = self._pending, b""
        self._overlong = False
        if not tail or (self.markers is not None and not _has_marker(tail, self.markers)):
            return []
        return self._events(tail, self.lines + 1)

    @property
    def mid_line(self) -> bool:
        """Whether the bytes fed so far end inside a line (``close`` would make it an event)."""
        return bool(self._pending) or self._overlong

    def closing(self, markers: Iterable[Marker] | None = None) -> list[Event]:
        """What ``close`` would return now (with ``markers``: only a line holding one), without
        ending the parse: the bytes fed so far as a stream that ends here."""
        ended = LogParser(self.console, markers)
        ended.lines, ended._pending = self.lines, self._pending
        return ended.close()

    def _keep(self, tail: bytes) -> None:
        self._pending = _capped(tail)
        self._overlong = len(self._pending) < len(tail.replace(b"\0", b""))

    def _scan(self, buf: bytes, end: int) -> list[Event]:
        """Events for the complete lines ``buf[:end]``; advances the line count."""
        if self.markers is None:
            starts: Iterable[int] = _line_starts(buf, end)
        else:
            found: set[int] = set()
            for marker in self.markers:
                for pos in _positions(marker, buf, end):
                    found.add(buf.rfind(b"\n", 0, pos) + 1)
            starts = sorted(found)
        events: list[Event] = []
        counted = 0
        for start in starts:
            self.lines += buf.count(b"\n", counted, start)
            stop = buf.find(b"\n", start)
            counted = stop + 1
            self.lines += 1
            events += self._events(_capped(buf[start:stop]), self.lines)
        self.lines += buf.count(b"\n", counted, end)
        return events

    def _events(self, raw: bytes, line: int) -> list[Event]:
        raw = raw.rstrip(b"\r")
        parts = raw.split(b"\r") if b"\r" in raw else [raw]
        return [
            parse_line(text, line, self.console)
            for part in parts
            if part
            for text in split_at_boot(plain_text(part))
        ]


def _positions(marker: Marker, buf: bytes, end: int) -> Iterator[int]:
    """Where ``marker`` occurs in ``buf[:end]``, at most once per line."""
    if isinstance(marker, bytes):
        pos = buf.find(marker, 0, end)
        while pos >= 0:
            yield pos
            pos = buf.find(marker, buf.find(b"\n", pos) + 1, end)
    else:
        for match in marker.finditer(buf, 0, end):
            yield match.start()


def marked_lines(data: bytes, markers: Iterable[Marker]) -> set[int]:
    """The numbers (1-based in ``data``) of the complete lines of ``data`` holding a marker: the
    lines ``LogParser(markers=markers)`` decodes when fed ``data``."""
    end = data.rfind(b"\n") + 1
    starts = sorted(
        {data.rfind(b"\n", 0, p) + 1 for m in markers for p in _positions(m, data, end)}
    )
    numbers, before, counted = set(), 0, 0
    for start in starts:
        before += data.count(b"\n", counted, start)  # lines before this one
        counted = start
        numbers.add(before + 1)
    return numbers


def _has_marker(line: bytes, markers: Iterable[Marker]) -> bool:
    return any(next(_positions(m, line, len(line)), None) is not None for m in markers)


def _capped(raw: bytes) -> bytes:
    """At most MAX_LINE bytes of a line. A NUL flood is the usual cause of a huge line, and what
    follows it still gets parsed."""
    if len(raw) <= MAX_LINE:
        return raw
    return raw.replace(b"\0", b"")[:MAX_LINE]


def _line_starts(buf: bytes, end: int) -> Iterator[int]:
    start = 0
    while start < end:
        yield start
        start = buf.find(b"\n", start) + 1


def parse_stream(
    stream: BinaryIO,
    console: str = "console",
    markers: Iterable[Marker] | None = None,
    chunk_size: int = CHUNK_SIZE,
    parser: LogParser | None = None,
) -> Iterator[Event]:
    """Events from a binary stream, read ``chunk_size`` bytes at a time. Pass ``parser`` to read
    its state afterwards (``parser.lines``: how many lines the stream held)."""
    parser = parser or LogParser(console, markers)
    while chunk := stream.read(chunk_size):
        yield from parser.feed(chunk)
        # Finishing the cut line here keeps the next big chunk from being copied onto it.
        yield from parser.feed(stream.readline(MAX_LINE))
    yield from parser.close()


def parse_bytes(
    data: bytes, console: str = "console", markers: Iterable[Marker] | None = None
) -> list[Event]:
    parser = LogParser(console, markers)
    return parser.feed(data) + parser.close()
