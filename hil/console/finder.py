"""Finding a regex in console text at ``str.find`` speed.

Python's regex engine scans text several times slower than ``str.find`` (a memchr-class search),
and a capture searches every byte a board sends for the panic patterns and the awaited marker.
Most such patterns must contain a literal (``Panic on CPU``, ``HILPROBE end``) and cannot match
a newline; for those, ``Finder`` finds the literal first and runs the regex only on the
line around it. Any other pattern is searched with the regex alone.

Text that is all ASCII (what boards print) is searched for the literals with the C library's
``memmem``, which compares many bytes per instruction: about 3.5 times faster than ``str.find``
(one byte at a time) on console text, measured with ``python -m bench.capture_bench``. Other
text, or a C library without ``memmem``, uses ``str.find``: the same offsets either way."""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from functools import lru_cache
from re import _constants as sre
from re import _parser as sre_parse
from typing import Any

# memmem(haystack address, its size, needle, its size) -> the hit's address, or None.
_Memmem = Callable[[int, int, bytes, int], int | None]

# Shorter literals hit too often to be worth finding first.
_MIN_LITERAL = 3
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
# Character classes that contain a newline.
_NEWLINE_CATEGORIES = (
    sre.CATEGORY_SPACE,
    sre.CATEGORY_NOT_DIGIT,
    sre.CATEGORY_NOT_WORD,
    sre.CATEGORY_LINEBREAK,
    sre.CATEGORY_UNI_SPACE,
    sre.CATEGORY_UNI_NOT_DIGIT,
    sre.CATEGORY_UNI_NOT_WORD,
    sre.CATEGORY_UNI_LINEBREAK,
)


class Finder:
    """``search(text, pos)`` returns what ``regex.search(text, pos)`` returns."""

    def __init__(self, regex: re.Pattern[str]) -> None:
        self.regex = regex
        self.literals = required_literals(regex)
        literals = self.literals or ()
        fast = literals and _MEMMEM is not None and all(lit.isascii() for lit in literals)
        self._needles = [lit.encode("ascii") for lit in literals] if fast else None

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        if self.literals is None:
            return self.regex.search(text, pos)
        size = len(text)
        i = self._find(text, pos)
        while i >= 0:
            # A match lies within one line, and the lines before this one held no literal.
            before = text.rfind("\n", pos, i)
            start = before + 1 if before >= 0 else pos
            after = text.find("\n", i)
            end = size if after < 0 else after + 1
            match = self.regex.search(text, start, end)
            if match is not None or end >= size:
                return match
            i = self._find(text, end)
        return None

    def _find(self, text: str, pos: int) -> int:
        """The first offset from ``pos`` on where a literal starts, or -1."""
        assert self.literals is not None
        if self._needles is not None and text.isascii():
            # One character is one byte: byte offsets are text offsets.
            return _memmem_first(_ascii_bytes(text), pos, self._needles)
        hits = [i for i in (text.find(lit, pos) for lit in self.literals) if i >= 0]
        return min(hits, default=-1)


def _load_memmem() -> _Memmem | None:
    try:
        memmem = ctypes.CDLL(None).memmem
    except (OSError, AttributeError, TypeError):  # no C library to load, or no memmem in it
        return None
    memmem.restype = ctypes.c_void_p
    memmem.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    found: _Memmem = memmem
    return found


_MEMMEM = _load_memmem()
# The last text encoded, with its bytes: a console's panic watch and its waits search the same
# text one after the other. A tuple is replaced whole, so reader threads never see a torn pair.
_LAST_ENCODED: tuple[str, bytes] = ("", b"")


def _ascii_bytes(text: str) -> bytes:
    global _LAST_ENCODED
    last = _LAST_ENCODED
    if last[0] is text:
        return last[1]
    data = text.encode("ascii")
    _LAST_ENCODED = (text, data)
    return data


def _memmem_first(data: bytes, pos: int, needles: list[bytes]) -> int:
    """Like ``min(data.find(n, pos) for n in needles if found)`` with ``memmem``; -1 if none.
    Each needle after a hit is sought only where it could start earlier."""
    assert _MEMMEM is not None
    pos = max(pos, 0)  # as the regex takes it; memmem must never start before the buffer
    base = ctypes.cast(data, ctypes.c_void_p).value
    assert base is not None
    best = len(data)
    for needle in needles:
        end = min(len(data), best + len(needle) - 1)  # a hit must start before ``best``
        if end - pos < len(needle):
            continue
        at = _MEMMEM(base + pos, end - pos, needle, len(needle))
        if at is not None:
            best = at - base
    return best if best < len(data) else -1


def first_of(data: bytes, needles: list[bytes]) -> int:
    """The least of ``data.find(n)`` over the non-empty ``needles`` that are there, or -1: with
    ``memmem`` where the C library has it."""
    if _MEMMEM is not None:
        return _memmem_first(data, 0, needles)
    hits = [i for i in (data.find(needle) for needle in needles) if i >= 0]
    return min(hits, default=-1)


@lru_cache(maxsize=1024)  # pure, and every case's consoles ask again for the same patterns
def required_literals(regex: re.Pattern[str]) -> tuple[str, ...] | None:
    """Literals one of which every match of ``regex`` contains, if ``regex`` cannot match a
    newline; None when no such set is known."""
    if not isinstance(regex.pattern, str) or regex.flags & (re.IGNORECASE | re.DOTALL):
        return None
    try:
        tree = sre_parse.parse(regex.pattern, regex.flags)
    except (re.error, RecursionError):
        return None
    items = list(tree)
    if not _one_line(items):
        return None
    return _required(items)


def _required(items: list[Any]) -> tuple[str, ...] | None:
    """The best set of literals one of which every match of ``items`` contains, or None.

    Each run of literals is such a set of one; so is, for a group or an alternation every
    alternative of which has a set, the union of theirs (the real boards' panic patterns end
    in ``(?:Kernel panic|SError Interrupt|...)`` after lines of prefixes). The best set is the
    one whose shortest literal is longest (a longer literal hits less often), then the smaller:
    ``(XEN)`` is in every line of Xen's, ``Panic on CPU`` in its panics only."""
    best: tuple[str, ...] | None = None

    def consider(found: tuple[str, ...] | None) -> None:
        nonlocal best
        if found is None or min(map(len, found)) < _MIN_LITERAL:
            return
        if best is None or (min(map(len, found)), -len(found)) > (
            min(map(len, best)),
            -len(best),
        ):
            best = found

    run: list[str] = []
    for op, av in [*items, (None, None)]:
        if op is sre.LITERAL:
            run.append(chr(av))
            continue
        if run:
            consider(("".join(run),))
            run = []
        if op is sre.SUBPATTERN and not (av[1] & re.IGNORECASE):
            consider(_required(list(av[3])))
        elif op is sre.ATOMIC_GROUP:
            consider(_required(list(av)))
        elif op in _REPEATS and av[0] >= 1:
            consider(_required(list(av[2])))
        elif op is sre.BRANCH:
            alternatives = [_required(list(alt)) for alt in av[1]]
            if all(alternatives):
                consider(tuple(dict.fromkeys(lit for alt in alternatives for lit in alt or ())))
    return best


def _one_line(items: Any) -> bool:
    """Whether no match of these items can contain a newline."""
    for op, av in items:
        if op is sre.LITERAL:
            ok = av != ord("\n")
        elif op is sre.NOT_LITERAL:
            ok = av == ord("\n")
        elif op is sre.IN:
            ok = _class_one_line(av)
        elif op in (sre.ANY, sre.AT, sre.GROUPREF):
            ok = True  # ANY: DOTALL was refused above or below
        elif op is sre.SUBPATTERN:
            ok = not av[1] & re.DOTALL and _one_line(av[3])
        elif op in _REPEATS:
            ok = _one_line(av[2])
        elif op is sre.BRANCH:
            ok = all(_one_line(alt) for alt in av[1])
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            ok = _one_line(av[1])
        elif op is sre.ATOMIC_GROUP:
            ok = _one_line(av)
        elif op is sre.GROUPREF_EXISTS:
            ok = _one_line(av[1]) and (av[2] is None or _one_line(av[2]))
        else:
            ok = False
        if not ok:
            return False
    return True


def _class_one_line(items: list[Any]) -> bool:
    """Whether a character class (``[...]``, ``\\s``) excludes the newline."""
    negated = any(op is sre.NEGATE for op, _ in items)
    has_newline = any(
        (op is sre.LITERAL and av == ord("\n"))
        or (op is sre.RANGE and av[0] <= ord("\n") <= av[1])
        or (op is sre.CATEGORY and av in _NEWLINE_CATEGORIES)
        for op, av in items
    )
    return has_newline if negated else not has_newline
