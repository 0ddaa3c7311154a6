"""All consoles of one board captured together: one merged timeline, waits that watch every
console for panics."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType

from hil.console.capture import Console
from hil.console.model import (
    DEFAULT_RECONNECT,
    LAST_LINES,
    PANIC_PATTERNS,
    ConsoleChunk,
    ConsoleGap,
    ConsoleLost,
    ConsoleMatch,
    ConsoleRecord,
    ReconnectPolicy,
)
from hil.console.wait import _last_lines, expect_any


class ConsoleGroup:
    """All consoles of one board (FVP/Juno have secure- and normal-world UARTs), captured together:
    one merged timeline, waits that watch every console for panics."""

    def __init__(
        self,
        urls: Mapping[str, str],
        log_dir: Path,
        *,
        reconnect: ReconnectPolicy = DEFAULT_RECONNECT,
        panic_patterns: Iterable[str] | Mapping[str, Iterable[str]] = PANIC_PATTERNS,
        connect_now: bool = True,
    ) -> None:
        """``connect_now=False``: the board's consoles may not listen yet (see Console.open);
        every (re-)open of the group then connects in the background.

        ``panic_patterns``: the same patterns for every console, or per console name (a console
        the mapping does not name watches the default PANIC_PATTERNS; an empty list watches
        none), so a panic is taken only from the console that can carry it."""
        if not urls:
            raise ValueError("a console group needs at least one console")
        if isinstance(panic_patterns, Mapping):
            unknown = sorted(set(panic_patterns) - set(urls))
            if unknown:
                raise ValueError(f"panic patterns for unknown consoles: {', '.join(unknown)}")
            per_console = {n: tuple(panic_patterns.get(n, PANIC_PATTERNS)) for n in urls}
        else:
            patterns = tuple(panic_patterns)
            per_console = dict.fromkeys(urls, patterns)
        cond = threading.Condition()
        self.consoles = {
            name: Console(
                name,
                url,
                log_dir,
                reconnect=reconnect,
                panic_patterns=per_console[name],
                condition=cond,
            )
            for name, url in urls.items()
        }
        self.connect_now = connect_now

    def prepare(self) -> ConsoleGroup:
        """Console.prepare for every console: ``open`` then costs little more than connecting
        (hil.ahead prepares the next case's while the board boots the current one)."""
        try:
            for console in self.consoles.values():
                console.prepare()
        except BaseException:
            self.discard()
            raise
        return self

    def open(self) -> ConsoleGroup:
        opened: list[Console] = []
        try:
            for console in self.consoles.values():
                opened.append(console.open(self.connect_now))
        except BaseException:
            for console in self.consoles.values():
                if console in opened:
                    console.close()
                elif console.started:  # prepared beforehand, never opened: as if never made
                    console.discard()
            raise
        return self

    def discard(self) -> None:
        """Close a group that was prepared and maybe never opened, removing capture files that
        captured nothing (Console.discard)."""
        for console in self.consoles.values():
            console.discard()

    def close(self) -> None:
        # Stop every reader first, so their last idle waits overlap instead of adding up.
        for console in self.consoles.values():
            console.request_stop()
        for console in self.consoles.values():
            console.close()
        # A capture with a hole is no evidence: the case ends as an infra error.
        for console in self.consoles.values():
            if console.capture_error is not None:
                raise console.capture_error

    def retarget(self, urls: Mapping[str, str]) -> None:
        """Point the (closed) consoles at new URLs; captures go on in the same files."""
        for name, console in self.consoles.items():
            console.url = urls[name]

    def __enter__(self) -> ConsoleGroup:
        return self.open()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __getitem__(self, name: str) -> Console:
        return self.consoles[name]

    def subscribe(
        self,
        on_chunk: Callable[[ConsoleChunk], None] | None = None,
        on_record: Callable[[ConsoleRecord], None] | None = None,
    ) -> None:
        for console in self.consoles.values():
            console.subscribe(on_chunk, on_record)

    @property
    def lost(self) -> ConsoleLost | None:
        return next((c.lost for c in self.consoles.values() if c.lost is not None), None)

    def mark(self) -> dict[str, int]:
        return {name: console.mark() for name, console in self.consoles.items()}

    def raw_marks(self) -> dict[str, int]:
        """Each console's Console.raw_mark."""
        return {name: console.raw_mark() for name, console in self.consoles.items()}

    def sync(self, timeout: float) -> list[str]:
        """Console.sync on every console (``timeout`` s in all); the names of those not done."""
        deadline = time.monotonic() + timeout
        return [
            name
            for name, console in self.consoles.items()
            if not console.sync(max(0.0, deadline - time.monotonic()))
        ]

    @property
    def reconnects(self) -> dict[str, int]:
        """How many times each console was re-opened after a drop."""
        return {name: console.reconnects for name, console in self.consoles.items()}

    def gaps(self, since: datetime | None = None) -> list[ConsoleGap]:
        """Every console's gaps (see Console.gaps) in the order they began: if this is not
        empty for ``since`` = a case's start, bytes of the case may be missing."""
        found = [g for c in self.consoles.values() for g in c.gaps(since)]
        return sorted(found, key=lambda g: g.lost)

    def timeline(self) -> list[ConsoleRecord]:
        """The lines of every console still in memory (see Console.records), in arrival order
        (each carries its console's name); the .log files have every line."""
        first = next(iter(self.consoles.values()))
        with first._cond:
            merged = [r for c in self.consoles.values() for r in c._records()]
        return sorted(merged, key=lambda r: r.time)

    def last_lines(self, n: int = LAST_LINES) -> list[str]:
        first = next(iter(self.consoles.values()))
        with first._cond:
            return _last_lines(list(self.consoles.values()), n)

    def expect(
        self,
        pattern: str | re.Pattern[str],
        timeout: float,
        since: Mapping[str, int] | None = None,
        console: str | None = None,
    ) -> ConsoleMatch:
        """Wait for ``pattern`` on ``console`` (default: any); a panic on any console ends it."""
        everyone = list(self.consoles.values())
        targets = [self.consoles[console]] if console else everyone
        return expect_any(targets, pattern, timeout, since, watch=everyone)
