"""A large log triaged on every core, with exactly the one-process result.

The mapped file is cut into parts that each start at a line that is TF-A's banner and nothing
else. Such a line starts a boot unless Xen has said nothing yet in the boot before it, so a worker
can triage each part from a fresh start: the main process appends the parts' boots in order,
merging a part's first boot into the boot before it when that one never got to Xen. Line numbers
are shifted by the lines of the parts before. Workers are forked with the mapping, die with the
process that started them (PR_SET_PDEATHSIG), and return finished boots part by part, so memory
stays bounded by a part, never by the file."""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable
from multiprocessing import get_context

from hil.triage.model import Boot, Triage
from hil.triage.scan import BANNER, LITERALS, Buffer, Scanner, _facts

PARALLEL_MIN = 64 << 20  # below this a second process costs more than it saves
PART_SIZE = 16 << 20
_PR_SET_PDEATHSIG = 1
_BANNER_LITERAL = LITERALS[0]

_buf: Buffer | None = None  # the mapped log, inherited by forked workers


def die_with_parent(parent: int) -> None:
    """Pool initializer: the kernel kills this worker when its parent dies (any way, SIGKILL
    included), so an interrupted ``hil triage`` leaves no process behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing equivalent to ask for
        pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def part_starts(buf: Buffer, size: int, part_size: int) -> list[int]:
    """Offsets where parts start: 0, then the first line after each ``part_size`` step that is
    TF-A's banner alone (a part boundary anywhere else could split one boot's facts)."""
    starts = [0]
    pos = part_size
    while pos < size:
        hit = buf.find(_BANNER_LITERAL, pos)
        if hit < 0:
            break
        start = buf.rfind(b"\n", max(0, hit - 4096), hit) + 1
        end = buf.find(b"\n", hit, hit + 4096)
        line = buf[start : end if end >= 0 else size]
        if start > starts[-1] and start > 0 and [f[0] for f in _facts(line)] == [BANNER]:
            starts.append(start)
            pos = start + part_size
        else:
            pos = hit + 1
    return starts


def _triage_part(bounds: tuple[int, int]) -> tuple[list[Boot], int, int]:
    """(the part's boots, its line count, TF-A banners in it); lines counted from the part."""
    assert _buf is not None
    boots: list[Boot] = []
    result = Triage("", boots.append)
    scanner = Scanner(result)
    scanner.scan(_buf, *bounds)
    result.finish()
    return boots, scanner.line - 1, result.banners


def triage_parallel(
    buf: Buffer, name: str, sink: Callable[[Boot], None] | None, workers: int | None
) -> Triage:
    """Triage ``buf`` (the whole mapped log) on ``workers`` processes; not finished yet."""
    global _buf
    size = len(buf)
    starts = part_starts(buf, size, PART_SIZE)
    bounds = list(zip(starts, [*starts[1:], size], strict=True))
    result = Triage(name, sink)
    workers = min(workers or os.cpu_count() or 1, len(bounds))
    if workers < 2:
        scanner = Scanner(result)
        scanner.scan(buf, 0, size)
        return result
    _buf = buf
    try:
        context = get_context("fork")
        with context.Pool(workers, die_with_parent, (os.getpid(),)) as pool:
            lines_before = 0
            for boots, lines, banners in pool.imap(_triage_part, bounds):
                for boot in boots:
                    boot.shift(lines_before)
                result.absorb(boots)
                result.banners += banners
                lines_before += lines
    finally:
        _buf = None
    return result
