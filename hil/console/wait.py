"""Waiting on consoles: the first match of a regex after a mark, ended at once by a panic or a
lost console."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence

from hil.console.capture import Console, Wait
from hil.console.finder import Finder
from hil.console.model import (
    LAST_LINES,
    ConsoleLost,
    ConsoleMatch,
    ConsolePanic,
    ConsoleTimeout,
    record_text,
)

# How much of each console's latest text the last lines of an error come from.
_TAIL = 64 << 10


def expect_any(
    consoles: Sequence[Console],
    pattern: str | re.Pattern[str],
    timeout: float,
    marks: Mapping[str, int] | None = None,
    watch: Sequence[Console] | None = None,
) -> ConsoleMatch:
    """Wait until ``pattern`` appears on one of ``consoles`` after its mark (default: from the
    start). A panic on any of ``watch`` (default: ``consoles``) before the match ends the wait
    with ConsolePanic; a lost console with ConsoleLost; no match in ``timeout`` s ConsoleTimeout.

    The text in memory after each mark is searched first, then each console's reader searches
    what arrives as it arrives (so a wait never falls behind a fast board). A match lies within
    one line, or within text that arrived in one read; a mark older than the text a console
    keeps in memory is searched from the oldest text kept."""
    regex = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
    watched = list(watch if watch is not None else consoles)
    everyone = list(dict.fromkeys([*consoles, *watched]))
    cond = consoles[0]._cond
    starts = {c.name: (marks or {}).get(c.name, 0) for c in everyone}
    wait = Wait(Finder(regex), {c.name: starts[c.name] for c in consoles})
    deadline = time.monotonic() + timeout
    with cond:
        for console in consoles:
            console._register(wait)
        try:
            while True:
                hit = min(wait.hits.values(), key=lambda h: h.time, default=None)
                _raise_panic_before(hit, watched, starts)
                if hit is not None:
                    return hit
                lost = next((c._lost for c in everyone if c._lost is not None), None)
                if lost is not None:
                    raise ConsoleLost(str(lost), _last_lines(everyone))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    where = ", ".join(c.name for c in consoles)
                    where = f"consoles {where}" if len(consoles) > 1 else f"console '{where}'"
                    last = _last_lines(everyone)
                    raise ConsoleTimeout(
                        f"{where}: no {pattern_text(regex)} within {timeout:g} s"
                        + _last_said(everyone, last),
                        last,
                    )
                cond.wait(remaining)
        finally:
            for console in consoles:
                console._unregister(wait)


def _raise_panic_before(
    hit: ConsoleMatch | None, watched: Sequence[Console], starts: Mapping[str, int]
) -> None:
    """Raise ConsolePanic for a panic after its console's mark that came before ``hit``."""
    for console in watched:
        panic = console._first_panic(starts[console.name])
        if panic is None:
            continue
        if hit is not None and (
            panic.start >= hit.end if hit.console == console.name else panic.time > hit.time
        ):
            continue
        raise ConsolePanic(
            f"console '{console.name}': panic: {record_text(panic.line)!r}",
            _last_lines(watched),
        )


# What makes a pattern more than its text: unescaped regex syntax.
_REGEX_SYNTAX = re.compile(r"(?<!\\)(?:\\\\)*(?:[.^$*+?{}\[\]|()]|\\[A-Za-z0-9])")


def pattern_text(regex: re.Pattern[str]) -> str:
    """A pattern as a person reads it in a message: text in double quotes ("HILPROBE end",
    backslash escapes removed), a regular expression as written between slashes; never Python's
    repr, which doubles every backslash."""
    if _REGEX_SYNTAX.search(regex.pattern):
        return f"/{regex.pattern}/"
    return '"' + re.sub(r"\\(.)", r"\1", regex.pattern) + '"'


def _last_said(consoles: Sequence[Console], last: Sequence[str]) -> str:
    """The last line seen, naming the console it came from (several consoles' lines come as
    "console | text", see _last_lines)."""
    if not last:
        return "; nothing received"
    console, sep, text = last[-1].partition(" | ")
    if len(consoles) == 1 or not sep:
        console, text = consoles[0].name, last[-1]
    return f"; last line on {console}: {text!r}"


def _last_lines(consoles: Sequence[Console], n: int = LAST_LINES) -> list[str]:
    if len(consoles) == 1:
        return consoles[0]._last_lines(n)
    merged = sorted((r for c in consoles for r in c._records(_TAIL, last=n)), key=lambda r: r.time)
    return [f"{r.console} | {r.text}" for r in merged[-n:]]
