"""The passes a capture makes over each read, compiled (``_capscan.c``, built and loaded by
``hil.native``) or in pure Python: whether the read is plain text, where the first of several
literals is, and the read's ``.log`` lines. Both give the same results (tests compare them); the
pure path runs without a compiler, when the build fails, or with ``HIL_CAPTURE_PURE=1``, and
``describe()`` says which one runs.

Compiled, a read costs one pass for each, outside the interpreter lock and with no copy but the
``.log`` text itself; in Python it costs a pass per literal and several bytes methods, each with
its own copy."""

from __future__ import annotations

import ctypes
from pathlib import Path

from hil import native

SOURCE = Path(__file__).with_name("_capscan.c")
# Bytes the .log writes as they are (printable ASCII, tab, CR and LF): a read of only these is
# turned into log lines with a few bytes methods instead of line by line.
PLAIN = bytes(range(0x20, 0x7F)) + b"\t\r\n"
# The .log text of a read is made in this much memory per console (more for a read with more
# lines than fit: it then takes several calls).
_OUT = 1 << 20

_state: dict[str, object] = {}  # "lib" (CDLL or None) and "why", once per process


def _declare(lib: ctypes.CDLL) -> None:
    lib.hil_plain.restype = ctypes.c_int
    lib.hil_plain.argtypes = [ctypes.c_char_p, ctypes.c_long]
    lib.hil_find_any.restype = ctypes.c_long
    lib.hil_find_any.argtypes = [ctypes.c_char_p, ctypes.c_long, ctypes.c_void_p]
    lib.hil_find_any.argtypes += [ctypes.c_void_p, ctypes.c_long]
    lib.hil_log_lines.restype = ctypes.c_long
    lib.hil_log_lines.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_char_p, ctypes.c_long]
    lib.hil_log_lines.argtypes += [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p]


def library() -> ctypes.CDLL | None:
    """The loaded passes, or None for the pure-Python ones (``describe()`` says why)."""
    if "lib" not in _state:
        _state["lib"], _state["why"] = native.load(SOURCE, "console", "HIL_CAPTURE_PURE", _declare)
    return _state["lib"]  # type: ignore[return-value]


def describe() -> str:
    library()
    return str(_state["why"])


def reset() -> None:
    """Forget the loaded passes (tests switch paths with the environment)."""
    _state.clear()


class Needles:
    """Literals to find with ``Scanner.find_any``, kept in the form the compiled pass takes."""

    def __init__(self, literals: tuple[bytes, ...]) -> None:
        self.literals = tuple(lit for lit in literals if lit)
        count = len(self.literals)
        self._pointers = (ctypes.c_char_p * count)(*self.literals)
        self._lens = (ctypes.c_long * count)(*(len(lit) for lit in self.literals))

    def pure_find(self, data: bytes, end: int) -> int:
        hits = [i for i in (data.find(lit, 0, end) for lit in self.literals) if i >= 0]
        return min(hits, default=-1)


class Scanner:
    """One console's passes (a reader thread's own: it holds the ``.log`` text it made last)."""

    def __init__(self, compiled: bool = True) -> None:
        """``compiled=False``: the pure-Python passes, whatever ``library()`` says."""
        self._lib = library() if compiled else None
        self._out = bytearray()
        self._address = 0
        if self._lib is not None:
            self._grow(_OUT)

    @property
    def compiled(self) -> bool:
        return self._lib is not None

    def plain(self, data: bytes) -> bool:
        """Whether ``data`` holds only PLAIN bytes."""
        if self._lib is None:
            return not data.translate(None, PLAIN)
        return bool(self._lib.hil_plain(data, len(data)))

    def find_any(self, data: bytes, needles: Needles) -> int:
        """The first offset where one of ``needles`` starts in ``data``, or -1."""
        if self._lib is None:
            return needles.pure_find(data, len(data))
        return int(
            self._lib.hil_find_any(
                data, len(data), needles._pointers, needles._lens, len(needles.literals)
            )
        )

    def _grow(self, size: int) -> None:
        if len(self._out) < size:
            self._out = bytearray(size)
            self._address = ctypes.addressof(ctypes.c_char.from_buffer(self._out))

    def log_lines(self, data: bytes, end: int, prefix: bytes) -> list[bytes | memoryview]:
        """The ``.log`` text of ``data[:end]``, plain bytes whose last is a newline: CRs
        dropped, ``prefix`` after each newline but the last. The last piece is a view of this
        scanner's memory, valid until its next call."""
        if self._lib is None:
            clean = data[:end].replace(b"\r", b"") if b"\r" in data[:end] else data[:end]
            return [clean.replace(b"\n", b"\n" + prefix)[: -len(prefix) or None]]
        self._grow(end + len(prefix))  # the longest line fits, with its prefix
        out = self._out
        view = memoryview(out)
        consumed = ctypes.c_long(0)
        pieces: list[bytes | memoryview] = []
        at = 0
        # The address of data[0] (a bytes object does not move): data[at:end] without a copy.
        base = ctypes.cast(data, ctypes.c_void_p).value
        assert base is not None
        while True:
            size = self._lib.hil_log_lines(
                base + at,
                end - at,
                prefix,
                len(prefix),
                self._address,
                len(out),
                ctypes.byref(consumed),
            )
            at += consumed.value
            if at >= end:
                pieces.append(view[:size])
                return pieces
            pieces.append(bytes(view[:size]))  # the memory is used again for the rest
