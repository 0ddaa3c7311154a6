"""The passes a capture makes over each read, compiled (``_capscan.c``, built and loaded by
``hil.native``) or in pure Python: where the first of several literals is, and the read's
``.log`` lines. Both give the same results (tests compare them); the pure path runs without a
compiler, when the build fails, or with ``HIL_CAPTURE_PURE=1``, and ``describe()`` says which
one runs.

Compiled, a read costs one pass for each, outside the interpreter lock and with no copy but the
``.log`` text itself, and only a line with UTF-8 in it is made in Python; in Python it costs a
pass per literal and several bytes methods, each with its own copy, and a read with UTF-8
anywhere in it is made line by line, some 30 times slower."""

from __future__ import annotations

import ctypes
from pathlib import Path

from hil import native
from hil.console.finder import first_of
from hil.console.model import record_text

SOURCE = Path(__file__).with_name("_capscan.c")
# Bytes the .log writes as they are (printable ASCII, tab, CR and LF): a read of only these is
# turned into log lines with a few bytes methods instead of line by line.
PLAIN = bytes(range(0x20, 0x7F)) + b"\t\r\n"
# The .log text of a read is made in this much memory per console: room for a whole read of
# hil.console.capture's (256 KiB) and the line begun before it (up to 64 KiB), escaped (4 x its
# bytes at most), so it is not made again for a long read.
_OUT = 3 << 19
# Why the compiled .log pass stopped (hil_log_lines in _capscan.c).
_DONE, _NOT_ASCII = 0, 2  # 1: out of room


def _declare(lib: ctypes.CDLL) -> None:
    lib.hil_find_any.restype = ctypes.c_long
    lib.hil_find_any.argtypes = [ctypes.c_char_p, ctypes.c_long, ctypes.c_void_p]
    lib.hil_find_any.argtypes += [ctypes.c_void_p, ctypes.c_long]
    lib.hil_log_lines.restype = ctypes.c_long
    lib.hil_log_lines.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_char_p, ctypes.c_long]
    lib.hil_log_lines.argtypes += [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p]


_HELPER = native.Helper(SOURCE, "console", "HIL_CAPTURE_PURE", _declare)
library = _HELPER.library  # the loaded passes, or None for the pure-Python path
describe = _HELPER.describe
reset = _HELPER.reset


class Needles:
    """Literals to find with ``Scanner.find_any``, kept in the form the compiled pass takes."""

    def __init__(self, literals: tuple[bytes, ...]) -> None:
        self.literals = tuple(lit for lit in literals if lit)
        count = len(self.literals)
        self._pointers = (ctypes.c_char_p * count)(*self.literals)
        self._lens = (ctypes.c_long * count)(*(len(lit) for lit in self.literals))


class Scanner:
    """One console's passes (a reader thread's own: it holds the ``.log`` text it made last)."""

    def __init__(self, compiled: bool = True) -> None:
        """``compiled=False``: the pure-Python passes, whatever ``library()`` says."""
        self._lib = library() if compiled else None
        self._out = bytearray()
        self._address = 0
        self._state = (ctypes.c_long * 2)()
        if self._lib is not None:
            self._grow(_OUT)

    @property
    def compiled(self) -> bool:
        return self._lib is not None

    def find_any(self, data: bytes, needles: Needles) -> int:
        """The first offset where one of ``needles`` starts in ``data``, or -1."""
        if self._lib is None:
            return first_of(data, list(needles.literals))  # a pass per literal
        return int(
            self._lib.hil_find_any(
                data, len(data), needles._pointers, needles._lens, len(needles.literals)
            )
        )

    def _grow(self, size: int) -> None:
        if len(self._out) < size:
            self._out = bytearray(size)
            self._address = ctypes.addressof(ctypes.c_char.from_buffer(self._out))

    def log_lines(
        self, data: bytes, start: int, end: int, prefix: bytes
    ) -> list[bytes | memoryview]:
        """The ``.log`` text of ``data[start:end]``, whole lines: each line as ``record_text``
        makes it, a newline, and ``prefix`` after each newline but the last. The last piece may
        be a view of this scanner's memory, valid until its next call."""
        if start >= end:
            return []
        if self._lib is None:
            return [_pure_lines(data[start:end], prefix)]
        # The longest line fits, escaped, with its prefix (and the memory stays bounded: a
        # read is at most hil.console.capture's read size and the line begun before it).
        self._grow(4 * (end - start) + len(prefix))
        view = memoryview(self._out)
        pieces: list[bytes | memoryview] = []
        # The address of data[0] (a bytes object does not move): data[at:end] without a copy.
        base = ctypes.cast(data, ctypes.c_void_p).value
        assert base is not None
        at = start
        while True:
            size = self._lib.hil_log_lines(
                base + at, end - at, prefix, len(prefix), self._address, len(self._out), self._state
            )
            at += self._state[0]
            why = self._state[1]
            if why == _DONE:
                pieces.append(view[:size])
                return pieces
            pieces.append(bytes(view[:size]))  # the memory is used again for the rest
            assert self._state[0] > 0 or why == _NOT_ASCII  # room for a line: it goes on
            if why == _NOT_ASCII:  # the line at ``at``, decoded here
                newline = data.index(b"\n", at, end)
                more = prefix if newline + 1 < end else b""
                pieces.append(line_text(data[at:newline]).encode() + b"\n" + more)
                at = newline + 1
                if at >= end:
                    return pieces


def _pure_lines(lines: bytes, prefix: bytes) -> bytes:
    """``Scanner.log_lines`` in Python: bytes methods where the text is ASCII (CRs dropped,
    control characters escaped), else line by line."""
    if not lines.isascii():
        each = [line_text(line).encode() for line in lines[:-1].split(b"\n")]
        return (b"\n" + prefix).join(each) + b"\n"
    clean = lines.replace(b"\r", b"") if b"\r" in lines else lines
    # Each control character there (a few kinds: ESC for colours) as str.encode("unicode_escape")
    # writes it, one replace for each kind.
    for control in set(clean.translate(None, PLAIN)):
        clean = clean.replace(bytes((control,)), b"\\x%02x" % control)
    return clean.replace(b"\n", b"\n" + prefix)[: -len(prefix) or None]


def line_text(line: bytes | bytearray) -> str:
    """One console line (no newline) as a record keeps it: decoded, ``record_text``."""
    return record_text(bytes(line).decode("utf-8", errors="replace"))
