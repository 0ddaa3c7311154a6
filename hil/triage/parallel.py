"""A large log triaged on every core, with exactly the one-process result.

The file is cut into parts that each start at a line that is TF-A's banner and nothing else.
Such a line starts a boot unless Xen has said nothing yet in the boot before it, so a worker can
triage each part from a fresh start: the main process appends the parts' boots in order, merging
a part's first boot into the boot before it when that one never got to Xen. The parts' lines are
counted first, so each worker numbers its own lines (and may render its boots as JSON). Workers
are forked with the open file (read with pread), die with the process that started them
(PR_SET_PDEATHSIG), and return finished boots part by part, so memory stays bounded by a part,
never by the file."""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable
from itertools import accumulate
from multiprocessing import get_context

from hil.triage.model import Boot, Tally, Triage, boot_json
from hil.triage.scan import BANNER, BLOCK, TFA_BANNER_LITERAL, Buffer, Scanner, _facts

PARALLEL_MIN = 64 << 20  # below this a second process costs more than it saves
PART_SIZE = 16 << 20
_PR_SET_PDEATHSIG = 1

_buf: Buffer | None = None  # the log, inherited by forked workers


def die_with_parent(parent: int) -> None:
    """Pool initializer: the kernel kills this worker when its parent dies (any way, SIGKILL
    included), so an interrupted ``hil triage`` leaves no process behind. Ctrl-C and SIGTERM are
    the parent's to handle (it stops the pool): a worker takes the default, quiet end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
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
        hit = buf.find(TFA_BANNER_LITERAL, pos)
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


def _count_lines(bounds: tuple[int, int]) -> int:
    assert _buf is not None
    start, end = bounds
    count = 0
    for pos in range(start, end, BLOCK):
        count += _buf[pos : min(end, pos + BLOCK)].count(b"\n")
    return count


Part = tuple[list[Boot], str, Tally, int]


def _triage_part(job: tuple[int, int, int, bool]) -> Part:
    """The part's boots (all of them, or its first and last with the ones between rendered
    as JSON), their tally, and the TF-A banners in it; lines numbered from ``base``."""
    assert _buf is not None
    start, end, base, render = job
    boots: list[Boot] = []
    result = Triage("", boots.append, current=Boot(first_line=base + 1))
    scanner = Scanner(result)
    scanner.line = base + 1
    scanner.scan(_buf, start, end)
    result.finish()
    if not render or len(boots) < 3:
        return boots, "", Tally(), result.banners
    middle = boots[1:-1]
    text = ", ".join(boot_json(boot) for boot in middle)
    return [boots[0], boots[-1]], text, Tally.of(middle), result.banners


def triage_parallel(
    buf: Buffer,
    name: str,
    sink: Callable[[Boot], None] | None,
    workers: int | None,
    rendered: Callable[[str, int], None] | None = None,
) -> Triage:
    """Triage ``buf`` (the whole log) on ``workers`` processes; not finished yet. With
    ``rendered``, workers render most boots to JSON themselves and the main process only
    writes them: first each part's lines are counted (in parallel), so every worker numbers
    its lines from where its part starts in the log."""
    global _buf
    size = len(buf)
    starts = part_starts(buf, size, PART_SIZE)
    bounds = list(zip(starts, [*starts[1:], size], strict=True))
    result = Triage(name, sink, rendered)
    workers = min(workers or os.cpu_count() or 1, len(bounds))
    if workers < 2:
        scanner = Scanner(result)
        scanner.scan(buf, 0, size)
        return result
    _buf = buf
    try:
        context = get_context("fork")
        with context.Pool(workers, die_with_parent, (os.getpid(),)) as pool:
            bases = list(accumulate(pool.map(_count_lines, bounds), initial=0))
            jobs = [
                (s, e, base, rendered is not None)
                for (s, e), base in zip(bounds, bases[:-1], strict=True)
            ]
            for boots, text, tally, banners in pool.imap(_triage_part, jobs):
                if text:
                    result.absorb_rendered(boots[0], text, tally, boots[1])
                else:
                    result.absorb(boots)
                result.banners += banners
    finally:
        _buf = None
    return result
