"""What a console capture produces and how its waits end: records, gaps, matches, errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from hil.errors import ExitCode, HilError, InfraError
from hil.terminal import escape
from hil.xen.log import format_capture_line

if TYPE_CHECKING:
    from collections.abc import Sequence

PANIC_PATTERNS: tuple[str, ...] = (r"Panic on CPU", r"Xen BUG at", r"Kernel panic", r"SError")
LAST_LINES = 20


class ConsoleError(HilError):
    """A wait on a console ended without its match; carries the last lines seen."""

    def __init__(self, message: str, last_lines: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.last_lines = tuple(last_lines)


class ConsoleTimeout(ConsoleError, InfraError):
    """The pattern did not arrive in time: the board stalled (the lab is broken)."""


class ConsoleLost(ConsoleError, InfraError):
    """The console connection is gone and could not be re-opened (or was closed)."""


class ConsolePanic(ConsoleError):
    """The firmware panicked: the firmware is wrong, not the lab."""

    exit_code = ExitCode.CHECK_FAILED


@dataclass(frozen=True)
class ReconnectPolicy:
    """How hard to try re-opening a lost console: ``attempts`` opens, exponential backoff."""

    attempts: int = 5
    wait_initial_s: float = 0.05
    wait_max_s: float = 2.0
    # A console opened before its board exists (``open(connect_now=False)``, an emulator that
    # power-on launches) keeps trying every ``first_connect_poll_s`` for this long before it is
    # lost. The poll is fine: QEMU waits for each console in turn before it runs at all, so each
    # poll missed is the boot's time (a refused local connect costs next to nothing).
    first_connect_s: float = 30.0
    first_connect_poll_s: float = 0.01


DEFAULT_RECONNECT = ReconnectPolicy()


@dataclass(frozen=True)
class ConsoleGap:
    """A stretch of time the console was not connected: whatever the board sent from ``lost`` to
    ``resumed`` is missing from the capture, between the first ``raw_offset`` bytes of
    ``<name>.raw`` and the rest (``text_offset`` is the same place as a ``mark()``). A gap whose
    ``resumed`` is None never ended (the console was not re-opened, or not yet). Every byte that
    reached the host before the drop is in the capture (over RFC 2217 too). ``resumed`` is when
    hil's connection was back; a terminal server starts forwarding once it has accepted it, a
    moment later, so ``overlaps`` is the test to use, not an exact byte count."""

    console: str
    lost: datetime
    resumed: datetime | None
    raw_offset: int
    text_offset: int
    cause: str

    def overlaps(self, since: datetime) -> bool:
        """Whether bytes sent at or after ``since`` may be missing because of this gap."""
        return self.resumed is None or self.resumed >= since


@dataclass(frozen=True)
class ConsoleChunk:
    time: datetime
    console: str
    data: bytes
    text: str


@dataclass(frozen=True)
class ConsoleRecord:
    """One console line: host UTC time its first byte arrived, console name, sanitised text."""

    time: datetime
    console: str
    text: str

    def format(self) -> str:
        return format_capture_line(self.time, self.console, self.text)


@dataclass(frozen=True)
class ConsoleMatch:
    console: str
    match: re.Match[str]  # positions are relative to the searched window; use ``end``
    end: int  # offset in the console's text just after the match: the next wait's mark
    time: datetime  # host time the byte completing the match arrived


def record_text(line: str) -> str:
    """What a record keeps of one console line: CRs (from CRLF endings) dropped, tabs kept as
    layout, every other non-printable character escaped."""
    return escape(line.replace("\r", ""), keep="\t")
