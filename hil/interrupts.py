"""How hil stops: SIGTERM (a CI job cancelled, ``kill``, systemd stopping a nightly) is handled as
Ctrl-C is, and once a run is stopping, a second Ctrl-C or SIGTERM does not cut short the writing
of what finished. Handlers can only be set from the main thread; elsewhere both are no-ops."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises KeyboardInterrupt, like Ctrl-C; the old handler after."""
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def interrupts_ignored() -> Iterator[None]:
    """Within the block Ctrl-C and SIGTERM do nothing. For the end of a run, which is already
    stopping: the reports of what finished are what the user stopped it for. (The handler does
    nothing at all on purpose: it runs between two bytecodes of the main thread, which may hold
    any lock or be inside a write to the terminal.)"""
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _ignore) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """Not SIG_IGN: an ignored disposition is inherited by the processes started meanwhile."""
