"""The probe protocol: what the dom0 probe asks (``ProbePlan``, also as the blob the C probe reads)
and what it prints (one ``HILPROBE`` line per answer). The C probe, the virtual board and the log
parser all use this one definition."""

from __future__ import annotations

import re
import struct
import uuid as _uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hil.ffa.abi import V1_0, V1_1, V1_2, FfaVersion, FunctionId
from hil.ffa.errors import FfaFormatError
from hil.ffa.reply import FfaReply
from hil.ffa.spmc import COUNT_FLAG, PAGE_SIZE
from hil.ffa.uuid import NIL_UUID, uuid_from_words, uuid_to_words

PREFIX = "HILPROBE"
MARK = PREFIX + " "  # how every probe line starts, wherever it sits in a console line
RX_CHUNK = 64
MAGIC = b"HILPRB01"
# The UUID every plan asks for as "absent" (no SP has it, so every SPMC and Xen must refuse it),
# unless a scenario's partition uses it: see :func:`absent_uuid`.
UNKNOWN_UUID = _uuid.UUID("0badc0de-0000-4000-8000-00000000f00d")


def absent_uuid(taken: Iterable[_uuid.UUID]) -> _uuid.UUID:
    """:data:`UNKNOWN_UUID`, or the first UUID after it that is not in ``taken``: a scenario that
    uses it must not turn the "not found" query into a "found" one."""
    used = set(taken)
    candidate = UNKNOWN_UUID
    while candidate in used:
        candidate = _uuid.UUID(int=candidate.int + 1)
    return candidate


@dataclass(frozen=True)
class ProbeQuery:
    uuid: _uuid.UUID = NIL_UUID
    flags: int = 0

    @property
    def count_only(self) -> bool:
        return bool(self.flags & COUNT_FLAG)


@dataclass(frozen=True)
class ProbePlan:
    """FFA_VERSION requests in order (the last one is the version the guest runs at), then
    FFA_RXTX_MAP, then one FFA_PARTITION_INFO_GET per query."""

    versions: tuple[FfaVersion, ...]
    queries: tuple[ProbeQuery, ...]

    def __post_init__(self) -> None:
        if not self.versions:
            raise FfaFormatError("a probe plan needs at least one FFA_VERSION request")

    @property
    def guest_version(self) -> FfaVersion:
        return self.versions[-1]

    @classmethod
    def standard(cls, guest_version: FfaVersion, uuids: Iterable[_uuid.UUID]) -> ProbePlan:
        """Every version answer, then count and list for Nil, each given UUID and an absent one."""
        distinct = list(dict.fromkeys(u for u in uuids if u != NIL_UUID))
        queries = [
            ProbeQuery(uuid, flags)
            for uuid in (NIL_UUID, *distinct, absent_uuid(distinct))
            for flags in (COUNT_FLAG, 0)
        ]
        return cls((V1_0, V1_1, V1_2, guest_version), tuple(queries))

    def encode(self) -> bytes:
        out = [MAGIC, struct.pack("<I", len(self.versions))]
        out += [struct.pack("<I", v.word) for v in self.versions]
        out.append(struct.pack("<I", len(self.queries)))
        out += [struct.pack("<6I", *uuid_to_words(q.uuid), q.flags, 0) for q in self.queries]
        return b"".join(out)

    @classmethod
    def decode(cls, blob: bytes) -> ProbePlan:
        try:
            if blob[:8] != MAGIC:
                raise FfaFormatError(f"probe plan blob has magic {blob[:8]!r}, expected {MAGIC!r}")
            (n_versions,) = struct.unpack_from("<I", blob, 8)
            versions = struct.unpack_from(f"<{n_versions}I", blob, 12)
            off = 12 + 4 * n_versions
            (n_queries,) = struct.unpack_from("<I", blob, off)
            words = [struct.unpack_from("<6I", blob, off + 4 + 24 * i) for i in range(n_queries)]
        except struct.error as exc:
            raise FfaFormatError(f"probe plan blob is truncated: {exc}") from exc
        if len(blob) != off + 4 + 24 * n_queries:
            raise FfaFormatError("probe plan blob length does not match its counts")
        return cls(
            tuple(FfaVersion.from_word(v) for v in versions),
            tuple(ProbeQuery(uuid_from_words(*w[:4]), w[4]) for w in words),
        )


class FfaEndpoint(Protocol):
    """The FF-A interface a probe talks to: Xen as a guest sees it, or the SPMD/SPMC directly."""

    def version(self, requested: FfaVersion) -> int: ...

    def rxtx_map(self) -> FfaReply: ...

    def partition_info_get(self, uuid: _uuid.UUID, flags: int) -> FfaReply: ...

    def rx_release(self) -> FfaReply: ...


@dataclass(frozen=True)
class PartinfoAnswer:
    query: ProbeQuery
    reply: FfaReply
    release: FfaReply | None = None


@dataclass
class ProbeTranscript:
    """Everything one probe run reported; equal transcripts mean equal guest-visible behaviour."""

    versions: list[tuple[FfaVersion, int]] = field(default_factory=list)
    rxtx_map: FfaReply | None = None
    partinfo: list[PartinfoAnswer] = field(default_factory=list)
    complete: bool = False
    error: str | None = None  # why the probe gave up before its first call (e.g. "bad-plan")


def rx_dump_size(reply: FfaReply, guest_version: FfaVersion) -> int:
    """How many RX bytes the probe prints after a successful list query."""
    size = reply.w3 or (8 if guest_version == V1_0 else 24)
    return min(PAGE_SIZE, reply.w2 * size)


def dumps_rx(query: ProbeQuery, reply: FfaReply) -> bool:
    """Whether the probe prints an RX dump and releases the buffer after this answer: a list
    query answered FFA_SUCCESS_32 (what firmware/probe/probe.c tests)."""
    return reply.w0 == FunctionId.SUCCESS_32 and not query.count_only


def run_plan(plan: ProbePlan, endpoint: FfaEndpoint) -> ProbeTranscript:
    """What a probe executing ``plan`` against ``endpoint`` reports. The probe zeroes its RX page
    before each query, so bytes the endpoint did not write read back as zero."""
    transcript = ProbeTranscript()
    transcript.versions = [(v, endpoint.version(v)) for v in plan.versions]
    transcript.rxtx_map = endpoint.rxtx_map()
    for query in plan.queries:
        reply = endpoint.partition_info_get(query.uuid, query.flags)
        if not dumps_rx(query, reply):
            transcript.partinfo.append(
                PartinfoAnswer(query, FfaReply(reply.w0, reply.w2, reply.w3))
            )
            continue
        size = rx_dump_size(reply, plan.guest_version)
        rx = reply.rx[:size].ljust(size, b"\0")
        transcript.partinfo.append(
            PartinfoAnswer(query, FfaReply(reply.w0, reply.w2, reply.w3, rx), endpoint.rx_release())
        )
    transcript.complete = True
    return transcript


UNDEFINED = "undefined"  # how a judged transcript shows a register the answer leaves undefined


def _w(value: int) -> str:
    return f"0x{value & 0xFFFFFFFF:08x}"


def format_transcript(
    transcript: ProbeTranscript, plan: ProbePlan, exception_level: int = 1, judged: bool = False
) -> Iterator[str]:
    """The probe's console lines for ``transcript`` (without line endings).

    ``judged``: the form a check compares, where registers an answer leaves undefined (all but
    w0 after SMCCC "unknown function", see :data:`hil.ffa.abi.SMCCC_UNKNOWN_FUNCTION`) read
    :data:`UNDEFINED` on both sides instead of whatever the caller had left in them."""

    def arg(reply: FfaReply, value: int) -> str:
        return _w(value) if reply.defines_args or not judged else UNDEFINED

    if transcript.error is not None:
        # The probe printed this instead of running the plan; a diff must show it.
        yield f"{PREFIX} error {transcript.error}"
        if transcript.complete:
            yield f"{PREFIX} end"
        return
    counts = f"versions={len(plan.versions)} queries={len(plan.queries)}"
    yield f"{PREFIX} begin {counts} el={exception_level}"
    for requested, w0 in transcript.versions:
        yield f"{PREFIX} version req={_w(requested.word)} w0={_w(w0)}"
    if (rxtx := transcript.rxtx_map) is not None:
        yield f"{PREFIX} rxtx_map w0={_w(rxtx.w0)} w2={arg(rxtx, rxtx.w2)}"
    for index, answer in enumerate(transcript.partinfo):
        reply = answer.reply
        yield (
            f"{PREFIX} partinfo q={index} uuid={answer.query.uuid} flags={_w(answer.query.flags)}"
            f" w0={_w(reply.w0)} w2={arg(reply, reply.w2)} w3={arg(reply, reply.w3)}"
        )
        for off in range(0, len(reply.rx), RX_CHUNK):
            chunk = reply.rx[off : off + RX_CHUNK]
            yield f"{PREFIX} rx q={index} off=0x{off:04x} hex={chunk.hex()}"
        if (release := answer.release) is not None:
            yield f"{PREFIX} rx_release q={index} w0={_w(release.w0)} w2={arg(release, release.w2)}"
    if transcript.complete:
        yield f"{PREFIX} end"


_LINE = re.compile(rf"{PREFIX} (\w+)((?: \w+=\S+)*)\s*$")
_ERROR = re.compile(rf"{PREFIX} error (\S+)\s*$")  # the one line with a bare word: the reason


def parse_probe_line(text: str) -> tuple[str, dict[str, str]] | None:
    """``(kind, fields)`` of a HILPROBE line (any prefix before it is ignored), else None."""
    start = text.find(MARK)
    if start < 0:
        return None
    error = _ERROR.match(text, start)
    if error:
        return "error", {"reason": error[1]}
    match = _LINE.match(text, start)
    if not match:
        return None
    fields = dict(item.split("=", 1) for item in match[2].split())
    return match[1], fields


class TranscriptBuilder:
    """Rebuilds a :class:`ProbeTranscript` from probe lines as they arrive. A line out of the
    order the probe prints (firmware/probe/probe.c) raises FfaFormatError: the probe never does
    that, so lines were lost, damaged or spliced on the console; ``incomplete`` says whether a
    finished transcript lacks lines its own ``begin`` announced."""

    def __init__(self) -> None:
        self.transcript = ProbeTranscript()
        self.began = False
        self._declared: tuple[int, int] | None = None  # (versions, queries) from "begin"
        self._rx: dict[int, bytearray] = {}

    def feed(self, kind: str, fields: dict[str, str]) -> None:
        t = self.transcript
        try:
            if t.complete:
                raise ValueError("after the end line")
            if kind == "begin":
                if self.began or t.error is not None:
                    raise ValueError("a second begin: two probe runs in one boot")
                self.began = True
                self._declared = (int(fields["versions"]), int(fields["queries"]))
            elif kind == "error":
                if self.began:
                    raise ValueError("after the begin line")
                t.error = fields["reason"]
            elif kind == "end":
                t.complete = True
            elif not self.began:
                raise ValueError("before the begin line")
            else:
                self._answer(kind, fields)
        except (KeyError, ValueError, IndexError) as exc:
            raise FfaFormatError(f"malformed {PREFIX} {kind} line: {exc}") from exc

    def _answer(self, kind: str, fields: dict[str, str]) -> None:
        t = self.transcript
        assert self._declared is not None
        versions, queries = self._declared
        if kind == "version":
            if t.rxtx_map is not None or len(t.versions) >= versions:
                raise ValueError(f"more than the {versions} announced or after rxtx_map")
            t.versions.append((FfaVersion.from_word(int(fields["req"], 16)), int(fields["w0"], 16)))
        elif kind == "rxtx_map":
            if t.rxtx_map is not None or len(t.versions) != versions:
                raise ValueError(f"after {len(t.versions)} of {versions} version lines")
            t.rxtx_map = FfaReply(int(fields["w0"], 16), int(fields["w2"], 16))
        elif kind == "partinfo":
            if (
                t.rxtx_map is None
                or int(fields["q"]) != len(t.partinfo)
                or len(t.partinfo) >= queries
            ):
                raise ValueError(f"q={fields['q']} after {len(t.partinfo)} of {queries} answers")
            if (hole := self._answer_hole()) is not None:
                raise ValueError(hole)
            query = ProbeQuery(_uuid.UUID(fields["uuid"]), int(fields["flags"], 16))
            reply = FfaReply(*(int(fields[k], 16) for k in ("w0", "w2", "w3")))
            t.partinfo.append(PartinfoAnswer(query, reply))
        elif kind == "rx":
            index, rx = self._current(fields), self._rx.setdefault(int(fields["q"]), bytearray())
            if int(fields["off"], 16) != len(rx):
                raise ValueError(f"off={fields['off']} after {len(rx)} bytes")
            rx.extend(bytes.fromhex(fields["hex"]))
            self._attach_rx(index)
        elif kind == "rx_release":
            index = self._current(fields)
            answer = t.partinfo[index]
            release = FfaReply(int(fields["w0"], 16), int(fields["w2"], 16))
            t.partinfo[index] = PartinfoAnswer(answer.query, answer.reply, release)
        else:
            # A kind the probe never prints: the line was damaged on its way here.
            raise ValueError(f"unknown kind {kind!r}")

    def _current(self, fields: dict[str, str]) -> int:
        """The answer an rx/rx_release line belongs to: the last one printed, a list query
        that succeeded and whose buffer is not released yet."""
        index = int(fields["q"])
        if index != len(self.transcript.partinfo) - 1:
            raise ValueError(f"q={index} is not the answer in progress")
        answer = self.transcript.partinfo[index]
        if not dumps_rx(answer.query, answer.reply) or answer.release is not None:
            raise ValueError(f"q={index} has no RX buffer to dump or release")
        return index

    def incomplete(self) -> str | None:
        """Why the lines fed so far are not a whole probe run, or None: the counts its begin
        line announced, an RX dump and a release after each successful list query, the end."""
        t = self.transcript
        if t.error is not None:
            return None if t.complete else f"no {PREFIX} end line"
        if self._declared is None:
            return f"no {PREFIX} begin line"
        versions, queries = self._declared
        if len(t.versions) != versions:
            return f"{len(t.versions)} of {versions} version lines"
        if t.rxtx_map is None:
            return "no rxtx_map line"
        if len(t.partinfo) != queries:
            return f"{len(t.partinfo)} of {queries} partinfo lines"
        if (hole := self._answer_hole()) is not None:
            return hole
        return None if t.complete else f"no {PREFIX} end line"

    def _answer_hole(self) -> str | None:
        """What the last partinfo answer lacks: its whole RX dump and its release."""
        t = self.transcript
        if not t.partinfo or not dumps_rx(t.partinfo[-1].query, t.partinfo[-1].reply):
            return None
        index, answer = len(t.partinfo) - 1, t.partinfo[-1]
        size = rx_dump_size(answer.reply, t.versions[-1][0] if t.versions else V1_1)
        if len(answer.reply.rx) != size:
            return f"q={index}: {len(answer.reply.rx)} of {size} RX bytes"
        if answer.release is None:
            return f"q={index}: no rx_release line"
        return None

    def _attach_rx(self, index: int) -> None:
        answer = self.transcript.partinfo[index]
        reply = answer.reply
        rx = bytes(self._rx[index])
        self.transcript.partinfo[index] = PartinfoAnswer(
            answer.query, FfaReply(reply.w0, reply.w2, reply.w3, rx), answer.release
        )


def parse_transcript(lines: Sequence[str] | Iterable[str]) -> ProbeTranscript:
    builder = TranscriptBuilder()
    for line in lines:
        parsed = parse_probe_line(line)
        if parsed:
            builder.feed(*parsed)
    return builder.transcript
