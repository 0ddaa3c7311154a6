"""Board consoles over pyserial ``serial_for_url`` (tty path, ``socket://``, ``rfc2217://``,
``loop://``): a reader thread records every byte (``<name>.raw``) and every line with its host
time (``<name>.log``), ``expect`` waits for a regex, panics end any wait at once, and a dropped
connection is re-opened (tenacity) without losing a byte already read.

``capture`` is one console, ``group`` a board's consoles together, ``wait`` the waits, ``ports``
how pyserial ports are opened and closed, ``model`` the records and errors."""

from hil.console.capture import Console
from hil.console.group import ConsoleGroup
from hil.console.model import (
    LAST_LINES,
    PANIC_PATTERNS,
    ConsoleChunk,
    ConsoleError,
    ConsoleGap,
    ConsoleLost,
    ConsoleMatch,
    ConsolePanic,
    ConsoleRecord,
    ConsoleTimeout,
    ReconnectPolicy,
    record_text,
)
from hil.console.wait import expect_any

__all__ = [
    "LAST_LINES",
    "PANIC_PATTERNS",
    "Console",
    "ConsoleChunk",
    "ConsoleError",
    "ConsoleGap",
    "ConsoleGroup",
    "ConsoleLost",
    "ConsoleMatch",
    "ConsolePanic",
    "ConsoleRecord",
    "ConsoleTimeout",
    "ReconnectPolicy",
    "expect_any",
    "record_text",
]
