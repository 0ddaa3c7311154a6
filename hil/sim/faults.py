"""Faults a virtual board injects into its boot, for reliability tests of the controller.

A fault set is a JSON object keyed by fault kind (at most one fault of each kind), e.g.
``{"stall": {"stage": "xen", "boots": 1}, "slow": {"ms_per_byte": 2}}``. Every fault acts when
the boot reaches its ``stage`` (``slow`` defaults to the first stage): before the stage's first
line, or before its ``line``-th line (0-based) so that a fault can land inside a stage's output.
It acts in at most ``boots`` boots counted from when the set was installed, so a controller's
retry can succeed; without ``boots`` it acts in every boot. Boots that never reach the stage (an
undeployed board stops after TF-A) do not count.

Kinds:
- ``stall``: output stops for good; only a reset or power-cycle revives the board.
- ``garbage``: ``size`` bytes of ``pattern`` (random | nul | ff | utf8, the last being truncated
  multi-byte UTF-8 sequences) are written, then the boot goes on.
- ``disconnect``: the console client's socket is closed. Like a real UART behind a terminal server,
  what the board prints until a client reconnects is lost to the wire, unless ``hold`` is true:
  then the board waits for the next client before it goes on.
- ``reboot`` (first boot only unless ``boots`` says otherwise) and ``reboot_loop`` (every boot
  unless ``boots`` says otherwise): the board restarts its boot from the first stage.
- ``slow``: from the stage on, every byte takes ``ms_per_byte`` milliseconds.
- ``burst``: ``size`` bytes of printable noise lines at full speed.
- ``text``: the UTF-8 of ``text`` is written as is (escape sequences, markup, shell syntax: the
  controller must treat console text as untrusted), then the boot goes on.
- ``corrupt``: the stage's ``line``-th line is damaged on the wire, as a UART framing error does:
  ``size`` bytes (default 1) from byte ``offset`` (default: the middle of the line) are replaced
  by ``pattern`` bytes (default ``ff``); the line keeps its length and its end. ``random`` may
  replace a byte by a printable one, which no receiver can tell from the real text.
- ``drop``: ``size`` bytes (default 1) of the stage's ``line``-th line are lost on the wire, as a
  UART overrun loses them, from byte ``offset`` (default: the middle of the line). When they run
  past the line's end, its end is lost too: what is left of it is glued to the next line.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from hil.errors import UsageError


class FaultKind(StrEnum):
    STALL = "stall"
    GARBAGE = "garbage"
    DISCONNECT = "disconnect"
    REBOOT = "reboot"
    REBOOT_LOOP = "reboot_loop"
    SLOW = "slow"
    BURST = "burst"
    TEXT = "text"
    CORRUPT = "corrupt"
    DROP = "drop"


class Garbage(StrEnum):
    RANDOM = "random"
    NUL = "nul"
    FF = "ff"
    UTF8 = "utf8"


# A spontaneous reboot happens once unless told otherwise; a reboot loop never ends by itself.
_DEFAULT_BOOTS: dict[FaultKind, int | None] = {FaultKind.REBOOT: 1}
_DEFAULT_SIZE: dict[FaultKind, int] = {
    FaultKind.GARBAGE: 256,
    FaultKind.BURST: 1 << 20,
    FaultKind.CORRUPT: 1,
    FaultKind.DROP: 1,
}
# Lead bytes of 2-, 3- and 4-byte UTF-8 sequences, each cut short of its continuation bytes.
_PARTIAL_UTF8 = (b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98")
# Upper bounds of a fault's numbers: a board process builds a garbage or burst fault's bytes in
# memory, and a test lab has no use for more than these.
_LIMITS = {
    "boots": 1_000_000,
    "size": 64 << 20,
    "seed": 2**64 - 1,
    "line": 1_000_000,
    "offset": 1 << 20,
}
MAX_MS_PER_BYTE = 10_000.0  # 10 s per byte: slower is a stall, which has its own fault
MAX_TEXT = 1 << 20


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    stage: str | None = None
    boots: int | None = None
    console: str = "ns"
    size: int = 0
    pattern: Garbage = Garbage.RANDOM
    hold: bool = False
    ms_per_byte: float = 0.0
    seed: int = 0
    line: int = 0  # acts before this line of the stage (0: before its first)
    text: str = ""
    offset: int | None = None  # corrupt, drop: the first byte hit (None: the line's middle)

    def noise(self) -> bytes:
        """The bytes a garbage or burst fault writes (reproducible from ``seed``)."""
        if self.kind is FaultKind.TEXT:
            return self.text.encode()
        rng = random.Random(self.seed)
        if self.kind is FaultKind.BURST:
            line = bytes(rng.randrange(0x20, 0x7F) for _ in range(79)) + b"\n"
            return (line * (self.size // len(line) + 1))[: self.size]
        if self.pattern is Garbage.NUL:
            return b"\0" * self.size
        if self.pattern is Garbage.FF:
            return b"\xff" * self.size
        if self.pattern is Garbage.UTF8:
            parts = (rng.choice(_PARTIAL_UTF8) for _ in range(self.size))
            return b"".join(parts)[: self.size]
        return rng.randbytes(self.size)

    def corrupt(self, data: bytes) -> bytes:
        """``data`` (lines as the board prints them) with its first line damaged."""
        start, length = self._hit(data)
        end = min(start + self.size, length)
        return data[:start] + self.noise()[: end - start] + data[end:]

    def drop(self, data: bytes) -> bytes:
        """``data`` (lines as the board prints them) with ``size`` bytes of its first line lost,
        and past its end when ``size`` says so."""
        start, _ = self._hit(data)
        return data[:start] + data[start + self.size :]

    def _hit(self, data: bytes) -> tuple[int, int]:
        """Where in ``data``'s first line the fault acts, and that line's length (no end)."""
        line_end = data.find(b"\n")
        length = len(data[: line_end if line_end >= 0 else len(data)].rstrip(b"\r"))
        return min(length // 2 if self.offset is None else self.offset, length), length


_FIELDS = {f.name for f in fields(Fault)} - {"kind"}


def _count(kind: FaultKind, name: str, value: Any) -> int:
    limit = _LIMITS[name]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise UsageError(f"fault {kind}: {name} must be an integer 0 to {limit}, got {value!r}")
    return value


def _fault(kind_text: str, spec: Any, stages: tuple[str, ...], consoles: tuple[str, ...]) -> Fault:
    try:
        kind = FaultKind(kind_text)
    except ValueError:
        raise UsageError(
            f"unknown fault {kind_text!r} (known: {', '.join(k.value for k in FaultKind)})"
        ) from None
    if not isinstance(spec, Mapping):
        raise UsageError(f"fault {kind}: expected an object, got {type(spec).__name__}")
    unknown = set(spec) - _FIELDS
    if unknown:
        raise UsageError(f"fault {kind}: unknown field(s) {', '.join(sorted(unknown))}")
    stage = spec.get("stage", stages[0] if kind is FaultKind.SLOW else None)
    if stage not in stages:
        raise UsageError(f"fault {kind}: stage {stage!r} is not one of {', '.join(stages)}")
    boots = spec.get("boots", _DEFAULT_BOOTS.get(kind))
    if boots is not None:
        boots = _count(kind, "boots", boots)
    size = _count(kind, "size", spec.get("size", _DEFAULT_SIZE.get(kind, 0)))
    seed = _count(kind, "seed", spec.get("seed", 0))
    line = _count(kind, "line", spec.get("line", 0))
    offset = spec.get("offset")
    if offset is not None:
        offset = _count(kind, "offset", offset)
    text = spec.get("text", "")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise UsageError(f"fault {kind}: text must be a string of at most {MAX_TEXT} characters")
    ms = spec.get("ms_per_byte", 0.0)
    if (
        not isinstance(ms, int | float)
        or isinstance(ms, bool)
        or not 0 <= ms <= MAX_MS_PER_BYTE  # also false for nan; no float() of a huge int
    ):
        raise UsageError(
            f"fault {kind}: ms_per_byte must be a number 0 to {MAX_MS_PER_BYTE:g}, got {ms!r}"
        )
    console = spec.get("console", "ns")
    if console not in consoles:
        raise UsageError(f"fault {kind}: console {console!r} is not one of {', '.join(consoles)}")
    default_pattern = Garbage.FF if kind is FaultKind.CORRUPT else Garbage.RANDOM
    try:
        pattern = Garbage(spec.get("pattern", default_pattern))
    except ValueError:
        raise UsageError(
            f"fault {kind}: pattern {spec['pattern']!r} is not one of "
            f"{', '.join(g.value for g in Garbage)}"
        ) from None
    hold = spec.get("hold", False)
    if not isinstance(hold, bool):
        raise UsageError(f"fault {kind}: hold must be true or false, got {hold!r}")
    return Fault(
        kind, stage, boots, console, size, pattern, hold, float(ms), seed, line, text, offset
    )


@dataclass
class FaultSet:
    faults: tuple[Fault, ...] = ()
    # How many boots each fault has acted in so far.
    fired: dict[FaultKind, int] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, value: Mapping[str, Any] | str, stages: tuple[str, ...], consoles: tuple[str, ...]
    ) -> FaultSet:
        """Validate a fault set given as JSON text or an already-decoded object."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise UsageError(f"faults: not valid JSON: {exc}") from None
        if not isinstance(value, Mapping):
            raise UsageError(f"faults: expected an object keyed by fault kind, got {value!r}")
        return cls(tuple(_fault(k, v, stages, consoles) for k, v in value.items()))

    def fire(self, stage: str) -> list[Fault]:
        """The faults that act now that a boot has reached ``stage``, counted as having acted."""
        due = [
            f
            for f in self.faults
            if f.stage == stage and (f.boots is None or self.fired.get(f.kind, 0) < f.boots)
        ]
        for fault in due:
            self.fired[fault.kind] = self.fired.get(fault.kind, 0) + 1
        return due
