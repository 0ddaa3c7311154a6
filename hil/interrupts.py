"""How hil stops: SIGTERM (a CI job cancelled, ``kill``, systemd stopping a nightly) is handled as
Ctrl-C is, and once a run is stopping, a second Ctrl-C or SIGTERM does not cut short the writing
of what finished. Handlers can only be set from the main thread; elsewhere both are no-ops."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from hil.errors import ExitCode

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
        # Unless a stopping run took SIGTERM over for the rest of the process (interrupts_ignored).
        if signal.getsignal(signal.SIGTERM) is _raise_interrupt:
            signal.signal(signal.SIGTERM, previous)


# Stop signals a stopping run takes before it gives up on its reports: a shutdown that hangs (a
# board's release blocked in a driver) must still yield to a user who insists.
PATIENCE = 2


@contextmanager
def interrupts_ignored(restore: bool = True) -> Iterator[None]:
    """Within the block Ctrl-C and SIGTERM do nothing, up to PATIENCE of them; one more ends the
    process at once (exit 3). For the end of a run, which is already stopping: the reports of
    what finished are what the user stopped it for. ``restore=False`` keeps them so after the
    block: for a run a signal stopped, whose process is ending, a second signal arriving while
    the interpreter shuts down would otherwise kill it (exit -2 / -15 instead of 3). (The
    handler does nothing else on purpose: it runs between two bytecodes of the main thread,
    which may hold any lock or be inside a write to the terminal.)"""
    if not _in_main_thread():
        yield
        return
    taken = 0

    def ignore(signum: int, frame: FrameType | None) -> None:
        nonlocal taken
        taken += 1
        if taken > PATIENCE:
            # Unbuffered and without cleanup: flock()s and the boards' parent watch release
            # everything with the process, and every capture byte is already written.
            os.write(2, b"hil: stopped before writing the reports\n")
            os._exit(ExitCode.INFRA)

    previous = {sig: signal.signal(sig, ignore) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        if restore:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
