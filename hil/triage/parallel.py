"""A large log triaged on every core, with exactly the one-process result.

The file is cut into parts that each start at a line that is TF-A's banner and nothing else.
Such a line starts a boot unless Xen has said nothing yet in the boot before it, so a worker can
triage each part from a fresh start: the main process appends the parts' boots in order, merging
a part's first boot into the boot before it when that one never got to Xen. A worker numbers
lines from its part's start (and may render its boots as JSON with the numbers left out); the
main process, which learns where each part starts from the parts before it, puts them in. Workers
are forked with the open file (read with pread), die with the process that started them
(PR_SET_PDEATHSIG), and return finished boots part by part, so memory stays bounded by a part,
never by the file."""

from __future__ import annotations

import ctypes
import gc
import os
import signal
from array import array
from collections.abc import Callable, Iterable, Sequence
from multiprocessing import get_context

from hil.triage.model import Boot, Tally, Triage, boot_template
from hil.triage.scan import BANNER, TFA_BANNER_LITERAL, Buffer, Scanner, _facts

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


def _start_worker(parent: int) -> None:
    """Pool initializer: ``die_with_parent``, and no cyclic garbage collection. What a worker
    makes (a part's boots, strings and numbers) holds no reference cycle and is freed by
    reference counting: the collector's passes over it (3 % of a part's instructions) would
    find nothing."""
    die_with_parent(parent)
    gc.disable()


def part_start(buf: Buffer, lo: int, hi: int) -> int | None:
    """The first line in ``buf[lo:hi]`` that is TF-A's banner alone, where a part may start (a
    part boundary anywhere else could split one boot's facts), or None."""
    pos = lo
    while pos < hi:
        hit = buf.find(TFA_BANNER_LITERAL, pos, hi)
        if hit < 0:
            return None
        start = buf.rfind(b"\n", max(0, hit - 4096), hit) + 1
        end = buf.find(b"\n", hit, hit + 4096)
        line = buf[start : end if end >= 0 else len(buf)]
        if start > 0 and [f[0] for f in _facts(line)] == [BANNER]:
            return start
        pos = hit + 1
    return None


def part_starts(buf: Buffer, size: int, part_size: int) -> list[int]:
    """Offsets where parts start: 0, then the first such line in each ``part_size`` step."""
    steps = range(part_size, size, part_size)
    return _starts(part_start(buf, lo, min(lo + part_size, size)) for lo in steps)


def _starts(found: Iterable[int | None]) -> list[int]:
    return sorted({0, *(start for start in found if start is not None)})


def _part_start(lo: int) -> int | None:
    assert _buf is not None
    return part_start(_buf, lo, min(lo + PART_SIZE, len(_buf)))


Part = tuple[list[Boot], str, Sequence[int], Tally, int, int]  # numbers: an array, sent as bytes


def _triage_part(job: tuple[int, int, bool]) -> Part:
    """The part's boots (all of them, or its first and last with the ones between rendered by
    ``boot_template``, and the template's line numbers), their tally, the TF-A banners and the
    newlines in it. Lines are numbered from the part's start: the main process, which learns
    where each part starts as the parts before it come back, moves them."""
    assert _buf is not None
    start, end, render = job
    boots: list[Boot | tuple[str, list[int]]] = []  # in order: Boots, and boots the scan rendered

    def templated(template: str, lines: list[int], _: int) -> None:
        boots.append((template, lines))

    result = Triage("", boots.append, templated=templated if render else None)
    scanner = Scanner(result)
    scanner.scan(_buf, start, end)
    result.finish()
    newlines = scanner.line - 1
    first, last = boots[0], boots[-1]  # the scan renders neither (see Scanner._replay_boots)
    assert isinstance(first, Boot) and isinstance(last, Boot)
    if not render or len(boots) < 3:
        kept = [b for b in boots if isinstance(b, Boot)]
        return kept, "", array("l"), Tally(), result.banners, newlines
    templates: list[str] = []
    lines: list[int] = []
    for boot in boots[1:-1]:
        template, numbers = boot_template(boot) if isinstance(boot, Boot) else boot
        templates.append(template)
        lines += numbers
    text = ", ".join(templates)
    tally = result.tally - Tally.of([first, last])  # the middle's, without a pass
    return [first, last], text, array("l", lines), tally, result.banners, newlines


def triage_single(buf: Buffer, result: Triage) -> Triage:
    """Triage ``buf`` in this process; not finished yet. With ``result.rendered``, the boots
    the scan renders itself go there."""
    if result.rendered is not None:
        write = result.rendered
        result.templated = lambda template, lines, boots: write(template % tuple(lines), boots)
    Scanner(result).scan(buf, 0, len(buf))
    return result


def triage_parallel(
    buf: Buffer,
    name: str,
    sink: Callable[[Boot], None] | None,
    workers: int | None,
    rendered: Callable[[str, int], None] | None = None,
) -> Triage:
    """Triage ``buf`` (the whole log) on ``workers`` processes; not finished yet. With
    ``rendered``, workers render most boots to JSON themselves and the main process only puts
    in their line numbers and writes them."""
    global _buf
    size = len(buf)
    result = Triage(name, sink, rendered)
    steps = range(PART_SIZE, size, PART_SIZE)
    workers = min(workers or os.cpu_count() or 1, len(steps) + 1)
    if workers < 2:
        return triage_single(buf, result)
    _buf = buf
    try:
        context = get_context("fork")
        with context.Pool(workers, _start_worker, (os.getpid(),)) as pool:
            # Each step is searched for where its part starts by a worker: in a log of few,
            # long boots that is a search through most of the file, which one process doing
            # it before the parts start would make everyone wait for.
            starts = _starts(pool.map(_part_start, steps))
            bounds = list(zip(starts, [*starts[1:], size], strict=True))
            jobs = [(s, e, rendered is not None) for s, e in bounds]
            base = 0  # newlines before the part
            for boots, text, lines, tally, banners, newlines in pool.imap(_triage_part, jobs):
                for boot in boots:
                    boot.shift(base)
                if text:
                    text %= tuple(map(base.__add__, lines))
                    result.absorb_rendered(boots[0], text, tally, boots[1])
                else:
                    result.absorb(boots)
                result.banners += banners
                base += newlines
            # Idle workers are let go (a sentinel each), not terminated: SIGTERM reaching a
            # worker that holds the pool's task-queue lock can leave the pool's shutdown
            # waiting on that lock for ever (a ``hil triage`` hung once in a CI run under
            # load; not reproduced in 750 runs since).
            pool.close()
            pool.join()
    finally:
        _buf = None
    return result
