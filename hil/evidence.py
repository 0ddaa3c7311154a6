"""The evidence a check judges, and nothing else: what one boot printed on the board's normal-world
console (``hil.lab.ConsoleRoles``), from the last TF-A banner of the boot attempt on, whole.

- Only the normal-world console carries Xen, dom0 (the probe) and TF-A's boot banner; text on any
  other console never starts a boot, hides evidence or supplies it. Panics are watched per world
  with patterns that never match a guest's relayed line.
- The attempt's own bytes only (``BootAttempt.raw_start``/``raw_end``), cut at its last banner: a
  retried or spontaneous reboot never merges two boots into one judged transcript.
- Evidence that may be incomplete is an infrastructure failure, never a verdict: a console that
  was disconnected during the boot (bytes may be missing), a damaged Xen or probe line, a probe
  transcript missing lines, two Xen boots in one. ``EvidenceCheck`` tells the boot machine so,
  and the board is booted again (bounded by the lab's ``boot_attempts``).
- The same holds for the Linux guest (``guest = "linux"``): its ``HILLINUX`` lines are dom0's,
  unprefixed, on the normal console; a damaged, glued or missing one (the end line's count
  disagrees, no version line, no end line) is not judged."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hil.boot import BootAttempt
from hil.compare import Observation
from hil.console import ConsoleGap, ConsoleGroup
from hil.errors import ConfigError, InfraError
from hil.ffa.errors import FfaFormatError
from hil.ffa.spmc import SpmcConfig
from hil.guest import LINUX, PROBE
from hil.guest.linux_log import END as LINUX_END
from hil.guest.linux_log import PREFIX as LINUX_PREFIX
from hil.guest.linux_log import LinuxLogError, LinuxView, parse_linux
from hil.lab import ConsoleRoles
from hil.probe import MARK, PREFIX, ProbePlan, ProbeTranscript, TranscriptBuilder
from hil.results import validate_name
from hil.xen.log import (
    NORMAL_WORLD_PANICS,
    SECURE_WORLD_PANICS,
    TFA_BANNER,
    ConsoleLine,
    Event,
    LogParser,
    MessageKey,
    ProbeLine,
    Stage,
    XenMessage,
    is_uncatalogued_ffa_printk,
    marked_lines,
    reads_after_damaged_stamp,
    starts_boot,
    xen_prefix,
)
from hil.xen.messages import FFA_KEYS, message


class EvidenceIncomplete(InfraError):
    """A boot's evidence is damaged or may be missing bytes (noise, a dropped connection), so
    the case can be judged neither pass nor fail: the lab must look, or the boot is retried."""


def panic_patterns(roles: ConsoleRoles, consoles: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Per console, the panics it can carry: the normal world's (Xen's own lines, dom0's kernel,
    TF-A's boot) on the normal console; on any other (the SPMC's, TF-A's runtime UART) only the
    secure world's own panic lines, never a mention of one in a log line."""
    return {
        name: NORMAL_WORLD_PANICS if name == roles.normal else SECURE_WORLD_PANICS
        for name in consoles
    }


# Bytes Xen's own lines and the probe's never hold: anything but printable ASCII, tab and CR.
_NOT_PRINTED = re.compile(rb"[^\t\n\r\x20-\x7e]")
# In any other line: control characters and bytes that are not UTF-8 (decoded with
# surrogateescape), once well-formed escape sequences (colours) are taken out.
_ESCAPE_SEQUENCE = re.compile(r"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]")
_GARBLED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\udc80-\udcff]")
_EXCERPT = 80
_CHUNK = 1 << 20
# The lines evidence can be in: Xen's (and what it relays), the probe's or the Linux guest's,
# TF-A's banner.
_EVIDENCE_MARKERS = (b"(XEN)", PREFIX.encode(), LINUX_PREFIX.encode(), TFA_BANNER.encode())


@dataclass(frozen=True)
class Window:
    """Where a judged boot's evidence is: bytes ``start``..``end`` of ``<console>.raw`` (the
    attempt's; its last boot is the one judged). Saved with the case as ``evidence.json``, so
    whoever reads the case back reads exactly what was judged."""

    console: str
    start: int
    end: int | None

    def to_json(self) -> dict[str, object]:
        return {"console": self.console, "start": self.start, "end": self.end}

    @classmethod
    def load(cls, path: Path) -> Window:
        """The window saved at ``path`` (EvidenceIncomplete when it cannot be read back)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            end = data["end"]
            console = validate_name("console", data["console"])  # a file name in the case
            return cls(console, int(data["start"]), None if end is None else int(end))
        except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
            raise EvidenceIncomplete(f"{path.name}: not a judged boot's window: {exc}") from exc

    def read(self, case_dir: Path) -> list[Event]:
        return read_boot(case_dir / f"{self.console}.raw", self.console, self.start, self.end)


@dataclass(frozen=True)
class Judged:
    """One booted attempt's evidence: where it is, its events (the last boot's, on the normal
    console) and what they show."""

    window: Window
    events: list[Event]
    observation: Observation


# The test SPMC's banner (firmware/test-spmc/spmc.c, hil.sim.boot_script): what it serves.
_SPMC_BANNER = re.compile(
    rb"HIL test SPMC v1 core=\d+ manifest=0x[0-9a-f]+ "
    rb"((?:version=0x[0-9a-f]{8} count=\d+ fpi_size=\d+ data_len=\d+ supported=\d+)"
    rb"|error=bad-scenario-blob)\r?$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Deployed:
    """What the bundle deployed for a case makes the board say about itself: the test SPMC's
    banner (what it serves) and the probe's plan (what it asks). A boot showing another
    bundle's is not this case's, whatever it passes or fails: a deploy that never reached the
    board leaves it booting the last one, and two scenarios can expect the same lines."""

    spmc: SpmcConfig
    plan: ProbePlan
    # XEN_FULLVERSION of the Xen the bundle carries ("4.22.0", "4.23-unstable"), when hil built
    # or inspected it: a deploy that left last night's Xen on the board boots another one.
    xen_version: str | None = None

    def banner(self) -> str:
        c = self.spmc
        return (
            f"version=0x{c.version.word:08x} count={c.count} fpi_size={c.fpi_size} "
            f"data_len={len(c.data)} supported={len(c.supported)}"
        )

    def spmc_differs(self, data: bytes) -> str | None:
        """Why the last boot's SPMC banner in ``data`` (one console's bytes) is not this
        bundle's, or None (also when there is none, or it is damaged: nothing to tell by)."""
        found = list(_SPMC_BANNER.finditer(data))
        if not found or (served := found[-1][1].decode()) == self.banner():
            return None
        return f"the SPMC that booted says {served!r}, the bundle deployed serves {self.banner()!r}"

    def xen_differs(self, events: Sequence[Event]) -> str | None:
        """Why the Xen that booted (its banner among ``events``) is not the bundle's, or None
        (also when the bundle does not say, or no banner was read: nothing to tell by)."""
        if self.xen_version is None:
            return None
        banners = [
            e for e in events if isinstance(e, XenMessage) and e.key is MessageKey.XEN_VERSION
        ]
        if not banners or (booted := str(banners[-1].fields["version"])) == self.xen_version:
            return None
        return f"Xen {booted} booted, the bundle deployed carries Xen {self.xen_version}"

    def plan_differs(self, transcript: ProbeTranscript) -> str | None:
        """Why the probe's transcript is not of this bundle's plan, or None."""
        if transcript.error is not None:
            return f"the probe could not use the plan it found ({transcript.error})"
        asked = [requested for requested, _ in transcript.versions]
        if asked != list(self.plan.versions[: len(asked)]):
            return "the probe asked for other FF-A versions than the bundle's plan"
        for index, answer in enumerate(transcript.partinfo):
            if index >= len(self.plan.queries) or answer.query != self.plan.queries[index]:
                return (
                    f"the probe's query q={index} (uuid={answer.query.uuid} "
                    f"flags=0x{answer.query.flags:08x}) is not the bundle's plan's"
                )
        return None


class EvidenceCheck:
    """``accept`` for the boot machine (``hil.boot.Accept``): reads each booted attempt's
    evidence from the capture under ``case_dir`` and keeps it, or says why it cannot be
    judged (also when the board booted another bundle than ``deployed``)."""

    def __init__(
        self,
        case_dir: Path,
        consoles: ConsoleGroup,
        roles: ConsoleRoles,
        deployed: Deployed | None = None,
        guest: str = PROBE,
    ) -> None:
        self.case_dir, self.consoles, self.normal = case_dir, consoles, roles.normal
        self.spmc_console = roles.secure or roles.normal  # where the SPMC logs
        self.deployed = deployed
        self.guest = guest  # dom0's guest (hil.guest.GUESTS): whose lines are evidence
        self.judged: dict[int, Judged] = {}  # attempt number -> its evidence
        # The normal console's capture, parsed once for every attempt and for events.json.
        self.parse = CaptureParse(case_dir / f"{self.normal}.raw", self.normal)

    def __call__(self, attempt: BootAttempt) -> str | None:
        if (gap := _first_gap(self.consoles.gaps(since=attempt.started))) is not None:
            return gap
        start, end = attempt.raw_start.get(self.normal, 0), attempt.raw_end.get(self.normal)
        try:
            shared = self.parse.boot(start, end, self.guest)
            if shared is not None:
                window, events = shared
            else:  # a boot that starts inside a line: parsed from its own first byte
                raw = self.case_dir / f"{self.normal}.raw"
                guest_end = dom0_end(raw, self.normal, start, end, self.guest)
                window = Window(self.normal, start, guest_end or end)
                events = window.read(self.case_dir)
            judged = Judged(window, events, observe(events, self.normal, guest=self.guest))
            if (other := self._other_bundle(attempt, judged)) is not None:
                return f"not judged: the board did not boot the bundle deployed: {other}"
            self.judged[attempt.number] = judged
        except EvidenceIncomplete as exc:
            return f"not judged: {exc}"
        return None

    def _other_bundle(self, attempt: BootAttempt, judged: Judged) -> str | None:
        if self.deployed is None:
            return None
        console = self.spmc_console
        start, end = attempt.raw_start.get(console, 0), attempt.raw_end.get(console)
        _, secure = _read_window(self.case_dir / f"{console}.raw", start, end)
        return (
            self.deployed.spmc_differs(secure)
            or self.deployed.xen_differs(judged.events)
            or self.deployed.plan_differs(judged.observation.transcript)
        )


def _first_gap(gaps: Sequence[ConsoleGap]) -> str | None:
    if not gaps:
        return None
    gap = gaps[0]
    where = f"at byte {gap.raw_offset} of {gap.console}.raw"
    if gap.resumed is None:
        return f"not judged: console '{gap.console}' was disconnected during the boot ({where})"
    seconds = (gap.resumed - gap.lost).total_seconds()
    return (
        f"not judged: console '{gap.console}' was disconnected for {seconds:.3f} s during the "
        f"boot ({where}); what the board sent meanwhile may be missing"
    )


def read_boot(raw: Path, console: str, start: int, end: int | None = None) -> list[Event]:
    """The events of the last boot in bytes ``start``..``end`` of the capture ``raw`` (one
    console's), numbered as lines of the whole file; EvidenceIncomplete if a line of it that
    could be evidence is damaged."""
    lines_before, data = _read_window(raw, start, end)
    # Only lines that can be evidence or start a boot are decoded: a boot may hold a flood.
    parser = LogParser(console, markers=_EVIDENCE_MARKERS)
    parser.lines = lines_before
    return _undamaged_boot(parser.feed(data) + parser.close(), data, lines_before, console)


def _undamaged_boot(
    events: list[Event], data: bytes, lines_before: int, console: str
) -> list[Event]:
    """The last boot among ``events`` (the evidence lines of ``data``, the window's bytes, which
    starts after line ``lines_before`` of its capture), checked for damage (_check_damage)."""
    events = last_boot(events)
    if events and _NOT_PRINTED.search(data):
        xen_from = next((e.line for e in events if _is_xen(e)), None)
        _check_damage(data, lines_before + 1, events[0], xen_from, console)
    return events


class CaptureParse:
    """One console's capture parsed once, from its first byte, in order, as far as it has been
    read: each booted attempt's evidence is taken from it (what ``dom0_end`` and ``read_boot``
    make of the attempt's bytes), and the case's ``events.json`` gets all of it once the console
    is closed (``rest``). Parsing the same bytes again cost each real-Xen case about as much as
    parsing them once."""

    def __init__(self, raw: Path, console: str) -> None:
        self.raw, self.console = raw, console
        self._parser = LogParser(console)
        self._events: list[Event] = []  # of the complete lines read so far
        self._read = 0  # bytes of ``raw`` parsed

    def _feed(self, end: int | None) -> bytes:
        """Parse bytes up to ``end`` (None: the end of the file); the bytes parsed now. OSError
        when the capture cannot be read (nothing is parsed then)."""
        if end is not None and end <= self._read:
            return b""
        with self.raw.open("rb") as f:
            f.seek(self._read)
            data = f.read() if end is None else f.read(end - self._read)
        self._events += self._parser.feed(data)
        self._read += len(data)
        return data

    def boot(self, start: int, end: int | None, guest: str) -> tuple[Window, list[Event]] | None:
        """The judged window of the attempt whose bytes are ``start``..``end`` (dom0's end line
        closes it, as ``dom0_end`` says) and its events (as ``Window.read`` gives them); None
        when the attempt starts inside a line, or has no end, and must be parsed by itself."""
        try:
            self._feed(start)
            if end is None or self._read != start or self._parser.mid_line:
                return None
            first, lines_before = len(self._events), self._parser.lines
            data = self._feed(end)
        except OSError as exc:
            raise EvidenceIncomplete(
                f"cannot read the capture {self.raw.name}: {exc.strerror}"
            ) from exc
        lines = self._events[first:]
        marker = (LINUX_END if guest == LINUX else PREFIX).encode()
        marked = marked_lines(data, (marker,))
        ending = [e for e in lines if e.line - lines_before in marked]
        found = next(
            (e for e in ending + self._parser.closing((marker,)) if _is_dom0_end(e, guest)), None
        )
        cut = None if found is None else _line_end(data, found.line - lines_before)
        window = Window(self.console, start, start + cut if cut is not None else end)
        evidence = marked_lines(data, _EVIDENCE_MARKERS)
        if cut is None:
            events = [e for e in lines if e.line - lines_before in evidence]
            events += self._parser.closing(_EVIDENCE_MARKERS)
        else:
            assert found is not None
            data = data[:cut]
            events = [
                e for e in lines if e.line <= found.line and e.line - lines_before in evidence
            ]
        return window, _undamaged_boot(events, data, lines_before, self.console)

    def rest(self) -> list[Event]:
        """Every event of the whole capture (read to its end: the console is closed)."""
        self._feed(None)
        return self._events + self._parser.close()


def _is_dom0_end(event: Event, guest: str) -> bool:
    """Whether ``event`` is dom0's own last line for ``guest``: the probe's ``HILPROBE end``,
    the Linux guest's ``HILLINUX end`` (unprefixed: not Xen's, not relayed from a domU)."""
    if guest == LINUX:
        return (
            isinstance(event, ConsoleLine)
            and event.domain is None
            and event.stage is not Stage.XEN
            and LINUX_END in event.text
        )
    return isinstance(event, ProbeLine) and event.domain == 0 and event.kind == "end"


def dom0_end(
    raw: Path, console: str, start: int, end: int | None = None, guest: str = PROBE
) -> int | None:
    """Where the line of dom0's first end line (``HILPROBE end``, or ``HILLINUX end`` for the
    Linux ``guest``) in bytes ``start``..``end`` of ``raw`` ends (a byte offset in ``raw``), or
    None: the end of the boot the stage machine saw finish. What the board printed after it
    reached the host a little earlier or later, so it must not be judged, or a verdict would
    depend on when the capture was read."""
    _, data = _read_window(raw, start, end)
    marker = LINUX_END if guest == LINUX else PREFIX
    parser = LogParser(console, markers=(marker.encode(),))
    for event in parser.feed(data) + parser.close():
        if _is_dom0_end(event, guest):
            at = _line_end(data, event.line)
            return start + at if at is not None else end
    return None


def _line_end(data: bytes, line: int) -> int | None:
    """Where line ``line`` (1-based) of ``data`` ends, after its newline; None when it has
    none (the last line, unterminated)."""
    at = -1
    for _ in range(line):
        at = data.find(b"\n", at + 1)
        if at < 0:
            return None
    return at + 1


def _read_window(raw: Path, start: int, end: int | None) -> tuple[int, bytes]:
    """(lines in ``raw`` before byte ``start``, bytes ``start``..``end``)."""
    try:
        with raw.open("rb") as f:
            lines_before = 0  # a boot starting mid-line continues the file's line
            while f.tell() < start and (chunk := f.read(min(_CHUNK, start - f.tell()))):
                lines_before += chunk.count(b"\n")
            data = f.read() if end is None else f.read(max(0, end - start))
    except OSError as exc:
        raise EvidenceIncomplete(f"cannot read the capture {raw.name}: {exc.strerror}") from exc
    return lines_before, data


def last_boot(events: Sequence[Event]) -> list[Event]:
    """``events`` from the last TF-A banner on (all of them when there is none)."""
    starts = [i for i, e in enumerate(events) if starts_boot(e)]
    return list(events[starts[-1] :] if starts else events)


def _is_xen(event: Event) -> bool:
    return isinstance(event, XenMessage) or (
        isinstance(event, ConsoleLine) and event.stage is Stage.XEN
    )


def _check_damage(
    data: bytes, first_line: int, boot: Event, xen_from: int | None, console: str
) -> None:
    """Raise EvidenceIncomplete for a damaged line of the boot starting with event ``boot``:
    damage in or after Xen's own prefix or the probe's mark (noise glued in front of a whole line
    is not), or, from Xen's first line on, a garbled line that could be one of Xen's lines with
    its prefix destroyed. A guest's relayed line is never evidence."""
    for number, line in _damaged_lines(data, first_line):
        if number < boot.line:
            continue
        if number == boot.line and starts_boot(boot):
            # What precedes the banner in its line is the end of the boot before.
            line = line[line.rfind(TFA_BANNER.encode()) :]
            if not _NOT_PRINTED.search(line):
                continue
        text = line.decode("utf-8", "surrogateescape")
        prefix = xen_prefix(text)
        if prefix is not None and prefix.domain is not None:
            continue
        mark = text.find(MARK)
        starts = [p for p in (prefix.start if prefix else -1, mark) if p >= 0]
        if starts:
            begin = min(starts)
            what = "probe" if begin == mark else "Xen"
            if _NOT_PRINTED.search(line, len(text[:begin].encode("utf-8", "surrogateescape"))):
                raise EvidenceIncomplete(
                    f"{console} line {number}: damaged {what} line {_excerpt(text[begin:])}"
                )
        elif (
            xen_from is not None
            and number >= xen_from
            and _GARBLED.search(_ESCAPE_SEQUENCE.sub("", text))
        ):
            raise EvidenceIncomplete(
                f"{console} line {number}: unreadable line among Xen's {_excerpt(text)}"
            )


def _excerpt(text: str) -> str:
    shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return repr(shown[:_EXCERPT])


def _damaged_lines(data: bytes, first: int) -> Iterator[tuple[int, bytes]]:
    """``(line number, line without its end)`` of each line of ``data`` holding a byte Xen and
    the probe never print; ``first`` is the number of its first line."""
    number, counted, found = first, 0, _NOT_PRINTED.search(data)
    while found is not None:
        start = data.rfind(b"\n", 0, found.start()) + 1
        end = data.find(b"\n", found.start())
        end = len(data) if end < 0 else end
        number += data.count(b"\n", counted, start)
        counted = start
        yield number, data[start:end].rstrip(b"\r")
        found = _NOT_PRINTED.search(data, end + 1)


def _glued(event: Event) -> str | None:
    """What ``event`` is ("a Xen line", "a probe line") when it is Xen's own line or dom0's probe
    line and holds the start of another such line after its own: its line end was lost (a
    UART overrun), so the first line is cut and a message may be hidden in it. Noise glued in
    front of a whole line is not this."""
    if isinstance(event, ProbeLine) and event.domain == 0:
        begin, what = event.raw.find(MARK) + len(MARK), "a probe line"
    elif _is_xen(event) and (prefix := xen_prefix(event.raw)) and prefix.domain is None:
        begin, what = prefix.end, "a Xen line"
    else:
        return None
    rest = event.raw[begin:]
    return what if MARK in rest or xen_prefix(rest) is not None else None


def _lost_sp_line(console: str, header: Event) -> EvidenceIncomplete:
    """Every Xen prints its bit-15 header right before the line of the SP it drops (4.20/4.21:
    one printk; 4.22+: the same loop pass, on the boot CPU alone): a header followed by anything
    else of Xen's lost that line on the way."""
    return EvidenceIncomplete(
        f"{console} line {header.line}: Xen's bit-15 header is not followed by the dropped SP's "
        "own line (lost on the way)"
    )


def observe(
    events: Sequence[Event], console: str, whole: bool = True, guest: str = PROBE
) -> Observation:
    """Xen's FF-A lines and dom0's probe answers (or the Linux ``guest``'s view) in the last
    boot on ``console`` among ``events`` (the normal-world console's: nothing else is evidence).
    EvidenceIncomplete when a probe or Linux guest line is damaged, two Xen boots merged, or
    (``whole``: a boot that finished) the probe's transcript or the guest's lines lack lines."""
    xen_lines: list[str] = []
    banners = 0
    probe = TranscriptBuilder()
    linux: list[str] = []  # the Linux guest's HILLINUX lines, as dom0 printed them
    header: Event | None = None  # Xen's bit-15 header, until the SP's line after it
    for event in last_boot([e for e in events if e.console == console]):
        if guest == LINUX and _linux_line(event):
            rest = event.raw[event.raw.find(LINUX_PREFIX) + len(LINUX_PREFIX) :]
            if LINUX_PREFIX in rest or xen_prefix(rest) is not None:
                raise EvidenceIncomplete(
                    f"{console} line {event.line}: two lines glued together (the end of a "
                    f"Linux guest line was lost, and maybe the rest of it) {_excerpt(event.raw)}"
                )
            linux.append(event.raw)
            continue
        if reads_after_damaged_stamp(event):
            raise EvidenceIncomplete(
                f"{console} line {event.line}: damaged Xen line (its console stamp) "
                f"{_excerpt(event.raw)}"
            )
        if (glued := _glued(event)) is not None:
            raise EvidenceIncomplete(
                f"{console} line {event.line}: two lines glued together (the end of {glued} was "
                f"lost, and maybe the rest of it) {_excerpt(event.raw)}"
            )
        if header is not None and _is_xen(event) and getattr(event, "domain", None) is None:
            # The SP's line, or a printk of the mediator's in its place (a Xen that words it
            # otherwise: compared below, so the diff shows it); anything else means it was lost.
            sp_line = isinstance(event, XenMessage) and event.key is MessageKey.SP_UNUSABLE
            if not (sp_line or is_uncatalogued_ffa_printk(event)):
                raise _lost_sp_line(console, header)
            header = None
        if isinstance(event, XenMessage) and event.key is MessageKey.ID_CONVENTION:
            header = event
        if isinstance(event, XenMessage):
            banners += event.key is MessageKey.XEN_VERSION
            if event.key in FFA_KEYS:
                xen_lines.append(message(event.key).render(**event.fields))
        elif isinstance(event, ProbeLine) and event.domain == 0:
            try:
                probe.feed(event.kind, dict(event.fields))
            except FfaFormatError as exc:
                raise EvidenceIncomplete(f"{console} line {event.line}: {exc}") from None
        elif isinstance(event, ConsoleLine) and event.domain in (0, None) and MARK in event.text:
            raise EvidenceIncomplete(
                f"{console} line {event.line}: unreadable probe line {event.raw[:_EXCERPT]!r}"
            )
        elif is_uncatalogued_ffa_printk(event):
            xen_lines.append(event.text.strip())  # type: ignore[attr-defined]
    if header is not None:
        raise _lost_sp_line(console, header)
    if banners > 1:
        raise EvidenceIncomplete(
            f"{console}: {banners} Xen boots without a TF-A banner between them (a reboot whose "
            "banner was lost)"
        )
    if guest == LINUX:
        return Observation(xen_lines, probe.transcript, _linux_view(linux, console, whole))
    if whole and (missing := probe.incomplete()) is not None:
        raise EvidenceIncomplete(f"{console}: the probe's transcript is incomplete: {missing}")
    return Observation(xen_lines, probe.transcript)


def _linux_line(event: Event) -> bool:
    """dom0's own line holding the Linux guest's mark: unprefixed (Xen's and a relayed
    domU's lines are not dom0's), noise glued in front allowed."""
    return (
        isinstance(event, ConsoleLine)
        and event.domain is None
        and event.stage is not Stage.XEN
        and LINUX_PREFIX in event.raw
    )


def _linux_view(lines: Sequence[str], console: str, whole: bool) -> LinuxView | None:
    """The Linux guest's view from its lines; None for a boot that did not finish (``whole``
    False) and so has no end line."""
    try:
        return parse_linux(lines)
    except LinuxLogError as exc:
        if not whole:
            return None
        raise EvidenceIncomplete(f"{console}: the Linux guest's lines: {exc}") from None
