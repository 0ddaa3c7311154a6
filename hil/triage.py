"""What a captured console log says the firmware and Xen's FF-A mediator did, boot by boot:
versions, whether FF-A came up, SPs dropped for the bit-15 ID convention, init failures
(the violations), and which Xen behaviour profile the messages match (reference §2, §5)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from multiprocessing import get_context
from pathlib import Path
from typing import Any, BinaryIO

from hil.xen.log import (
    CHUNK_SIZE,
    TFA_BANNER,
    XEN_MESSAGE_LINES,
    ConsoleLine,
    Event,
    LogParser,
    MessageKey,
    XenMessage,
    parse_stream,
    starts_boot,
)

K = MessageKey
MARKERS = (XEN_MESSAGE_LINES, TFA_BANNER.encode())  # the lines triage reads

# Init failures a firmware must not cause; each is reported with its line.
VIOLATIONS: frozenset[MessageKey] = frozenset(
    {
        K.SP_UNUSABLE,
        K.CACHE_FAILED,
        K.TOO_MANY_SPS,
        K.IMPOSSIBLE_SP_COUNT,
        K.PARTINFO_SIZE_INVALID,
        K.SP_LIST_FAILED,
        K.INCOMPATIBLE_VERSION,
    }
)
# Messages after which the mediator is not serving the firmware's SPs.
_FFA_DOWN: frozenset[MessageKey] = VIOLATIONS - {K.SP_UNUSABLE} | {
    K.SMCCC_UNSUPPORTED,
    K.VERSION_FAILED,
    K.VERSION_FAILED_VCPU,
    K.RXTX_INIT_FAILED,
    K.SUBSCR_ALLOC_FAILED,
    K.NO_FIRMWARE,
    K.TEE_PROBE_FAILED,
    K.MANDATORY_FEATURE_MISSING,
    K.INCOMPATIBLE_VERSION_LEGACY,
    K.VERSION_NOT_SUPPORTED_LEGACY,
    K.RXTX_MAP_FAILED_LEGACY,
}
_NOT_FFA: frozenset[MessageKey] = frozenset({K.XEN_VERSION, K.DOM0_CREATE_FAILED, K.PANIC})
_TEE_NAMED: frozenset[MessageKey] = frozenset(
    {K.TEE_SELECTED, K.TEE_PROBE_FAILED, K.TEE_NOT_SUPPORTED, K.TEE_USING}
)


@dataclass(frozen=True)
class Violation:
    kind: str  # the catalogue key of the message
    line: int
    text: str
    fields: dict[str, int | str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        extra = {("sp_id" if k == "id" else k): v for k, v in self.fields.items()}
        return {"kind": self.kind, "line": self.line, **extra, "text": self.text}


@dataclass
class Boot:
    """One boot's FF-A story, from the Xen banner (or the log start) to the next boot."""

    first_line: int
    xen_version: str | None = None
    mediator_version: str | None = None
    firmware_version: str | None = None
    ffa_lines: int = 0
    ffa_up: bool = False
    ffa_down: bool = False
    header_count: int = 0
    unusable_count: int = 0
    dropped_sp_ids: list[int] = field(default_factory=list)
    cache_failed: bool = False
    xen_4_20_evidence: bool = False
    violations: list[Violation] = field(default_factory=list)

    def add(self, event: XenMessage, line: int) -> None:
        """Account ``event``, found at ``line`` of the whole log."""
        key, values = event.key, event.fields
        if key in _TEE_NAMED and str(values["name"]).lower() not in ("ffa", "ff-a"):
            return  # another TEE mediator (OP-TEE)
        if key not in _NOT_FFA:
            self.ffa_lines += 1
        match key:
            case K.XEN_VERSION:
                self.xen_version = str(values["version"])
                self.xen_4_20_evidence |= self.xen_version.startswith("4.20")
            case K.MEDIATOR_VERSION:
                self.mediator_version = str(values["version"])
            case K.FIRMWARE_VERSION:
                self.firmware_version = str(values["version"])
            case K.TEE_USING:
                self.ffa_up = True
            case K.ID_CONVENTION:
                self.header_count += 1
            case K.SP_UNUSABLE:
                self.unusable_count += 1
                if values["id"] not in self.dropped_sp_ids:
                    self.dropped_sp_ids.append(int(values["id"]))
            case K.CACHE_FAILED:
                self.cache_failed = True
            case K.IMPOSSIBLE_SP_COUNT:
                self.xen_4_20_evidence = True
        self.ffa_down |= key in _FFA_DOWN
        if key in VIOLATIONS:
            self.violations.append(Violation(key.value, line, event.raw, dict(values)))

    def shift(self, lines: int) -> None:
        """Move this boot ``lines`` lines further into the log (a worker counted from its
        segment's start)."""
        self.first_line += lines
        self.violations = [
            Violation(v.kind, v.line + lines, v.text, v.fields) for v in self.violations
        ]

    @property
    def ffa_enabled(self) -> bool | None:
        if not self.ffa_lines:
            return None
        return self.ffa_up and not self.ffa_down

    @property
    def profile(self) -> str:
        repeated_header = self.header_count > 1 and self.header_count == self.unusable_count
        if repeated_header or self.mediator_version == "1.1":
            return "xen-4.20" if self.xen_4_20_evidence else "xen-4.21"
        single_header = self.header_count == 1 and self.unusable_count > 1
        if single_header or self.mediator_version == "1.2" or self.cache_failed:
            return "xen-4.22"
        return "unknown"

    def to_json(self) -> dict[str, Any]:
        return {
            "first_line": self.first_line,
            "xen_version": self.xen_version,
            "mediator_version": self.mediator_version,
            "firmware_version": self.firmware_version,
            "ffa_enabled": self.ffa_enabled,
            "dropped_sp_ids": list(self.dropped_sp_ids),
            "cache_failed": self.cache_failed,
            "profile": self.profile,
            "violations": [v.to_json() for v in self.violations],
        }


@dataclass
class Triage:
    file: str
    boots: list[Boot] = field(default_factory=lambda: [Boot(first_line=1)])

    @property
    def last(self) -> Boot:
        return self.boots[-1]

    @property
    def has_violation(self) -> bool:
        return any(boot.violations for boot in self.boots)

    def add(self, event: Event, line_offset: int = 0) -> None:
        """Account ``event``; its line number is ``line_offset`` lines into the whole log."""
        line = event.line + line_offset
        boot = self.last
        started = boot.xen_version is not None or boot.ffa_lines > 0
        if isinstance(event, ConsoleLine):
            if starts_boot(event) and started:
                self.boots.append(Boot(first_line=line))
            return
        if not isinstance(event, XenMessage):
            return
        new_banner = event.key is K.XEN_VERSION and started
        second_mediator = event.key is K.MEDIATOR_VERSION and boot.mediator_version is not None
        if new_banner or second_mediator:
            self.boots.append(Boot(first_line=line))
        self.last.add(event, line)

    def to_json(self) -> dict[str, Any]:
        """The last boot's fields at top level (what the board runs now), all in ``boots``."""
        summary = self.last.to_json()
        del summary["first_line"]
        return {"file": self.file, **summary, "boots": [b.to_json() for b in self.boots]}


def triage_stream(stream: BinaryIO, name: str) -> Triage:
    """Triage a binary console log; reads it once, in constant memory."""
    result = Triage(name)
    for event in parse_stream(stream, name, markers=MARKERS):
        result.add(event)
    return result


SEGMENT_SIZE = 32 * 1024 * 1024


def triage_file(
    path: Path, name: str, workers: int | None = None, segment_size: int = SEGMENT_SIZE
) -> Triage:
    """Triage a log file on every core, with exactly triage_stream's result. Worker processes
    triage newline-aligned segments; each returns the events before its first boot starts (they
    continue the previous segment's boot, so this process replays them) and its own boots, which
    are appended with their line numbers shifted. Replaying is exact: a boot starts on conditions
    that only grow with the events of the current boot, so this process starts a boot wherever a
    worker did. Memory stays bounded by the segment size, not the file size."""
    workers = workers or os.cpu_count() or 1
    size = path.stat().st_size
    if workers < 2 or size < 2 * segment_size:
        with path.open("rb") as stream:
            return triage_stream(stream, name)
    result = Triage(name)
    lines_before = 0
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        segments = _segments(path, size, segment_size)
        for head, boots, lines in pool.map(_triage_segment, repeat(path), segments, repeat(name)):
            for event in head:
                result.add(event, lines_before)
            for boot in boots:
                boot.shift(lines_before)
            result.boots += boots
            lines_before += lines
    return result


def _segments(path: Path, size: int, segment_size: int) -> Iterator[tuple[int, int]]:
    """(start, end) byte ranges covering the file, each ending just after a newline (or at EOF),
    found by reading in bounded steps: a log may hold one enormous line."""
    with path.open("rb") as stream:
        start = 0
        while start < size:
            stream.seek(min(start + segment_size, size))
            while (piece := stream.readline(CHUNK_SIZE)) and not piece.endswith(b"\n"):
                pass
            end = min(stream.tell(), size)
            yield start, end
            start = end


class _Segment(io.RawIOBase):
    """``end - start`` bytes of a raw file from ``start``."""

    def __init__(self, raw: io.FileIO, start: int, end: int) -> None:
        raw.seek(start)
        self.raw, self.left = raw, end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[: self.left]
        count = self.raw.readinto(view) or 0
        self.left -= count
        return count


def _triage_segment(
    path: Path, bounds: tuple[int, int], name: str
) -> tuple[list[Event], list[Boot], int]:
    """(events before the segment's first boot starts, the boots it starts, its line count)."""
    segment_triage = Triage(name)
    head: list[Event] = []
    parser = LogParser(name, MARKERS)
    with path.open("rb", buffering=0) as raw:
        segment = io.BufferedReader(_Segment(raw, *bounds), CHUNK_SIZE)
        for event in parse_stream(segment, name, parser=parser):
            segment_triage.add(event)
            if len(segment_triage.boots) == 1:
                head.append(event)
    return head, segment_triage.boots[1:], parser.lines
