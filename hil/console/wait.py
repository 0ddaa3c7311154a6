"""Waiting on consoles: the first match of a regex after a mark, ended at once by a panic or a
lost console."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence

from hil.console.capture import Console
from hil.console.model import (
    LAST_LINES,
    ConsoleLost,
    ConsoleMatch,
    ConsolePanic,
    ConsoleTimeout,
    record_text,
)

# A wait re-searches only this much old text on each wake-up, so long captures stay linear; a
# match longer than this that arrives across several reads could be missed (markers are lines).
_RESCAN = 64 * 1024


def expect_any(
    consoles: Sequence[Console],
    pattern: str | re.Pattern[str],
    timeout: float,
    marks: Mapping[str, int] | None = None,
    watch: Sequence[Console] | None = None,
) -> ConsoleMatch:
    """Wait until ``pattern`` appears on one of ``consoles`` after its mark (default: from the
    start). A panic on any of ``watch`` (default: ``consoles``) before the match ends the wait
    with ConsolePanic; a lost console with ConsoleLost; no match in ``timeout`` s ConsoleTimeout."""
    regex = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
    watched = list(watch if watch is not None else consoles)
    everyone = list(dict.fromkeys([*consoles, *watched]))
    cond = consoles[0]._cond
    starts = {c.name: (marks or {}).get(c.name, 0) for c in everyone}
    resume = dict(starts)
    deadline = time.monotonic() + timeout
    with cond:
        while True:
            hit = _first_hit(consoles, regex, watched, resume)
            if hit is not None:
                return hit
            for c in everyone:
                resume[c.name] = max(starts[c.name], c._text_len - _RESCAN)
            lost = next((c._lost for c in everyone if c._lost is not None), None)
            if lost is not None:
                raise ConsoleLost(str(lost), _last_lines(everyone))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                names = ",".join(c.name for c in consoles)
                last = _last_lines(everyone)
                raise ConsoleTimeout(
                    f"console '{names}': no {regex.pattern!r} within {timeout:g} s"
                    + (f"; last line: {last[-1]!r}" if last else "; nothing received"),
                    last,
                )
            cond.wait(remaining)


def _first_hit(
    consoles: Sequence[Console],
    regex: re.Pattern[str],
    watched: Sequence[Console],
    starts: Mapping[str, int],
) -> ConsoleMatch | None:
    """The earliest match, unless a panic arrived before it (then raise)."""
    found: ConsoleMatch | None = None
    found_end = 0
    for console in consoles:
        base, text = console._window(starts[console.name])
        m = regex.search(text, starts[console.name] - base)
        if m is None:
            continue
        when = console._time_at(base + m.end())
        if found is None or when < found.time:
            found, found_end = ConsoleMatch(console.name, m, base + m.end(), when), m.end()
    for console in watched:
        if console.panic is None:
            continue
        base, text = console._window(starts[console.name])
        p = console.panic.search(text, starts[console.name] - base)
        if p is None:
            continue
        if found is not None and (
            p.start() >= found_end
            if found.console == console.name
            else console._time_at(base + p.end()) > found.time
        ):
            continue
        raise ConsolePanic(
            f"console '{console.name}': panic: {record_text(_line_at(text, p.start()))!r}",
            _last_lines(watched),
        )
    return found


def _line_at(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start : end if end >= 0 else len(text)]


def _last_lines(consoles: Sequence[Console], n: int = LAST_LINES) -> list[str]:
    if len(consoles) == 1:
        return consoles[0]._last_lines(n)
    merged = sorted((r for c in consoles for r in c._records[-n:]), key=lambda r: r.time)
    return [f"{r.console} | {r.text}" for r in merged[-n:]]
