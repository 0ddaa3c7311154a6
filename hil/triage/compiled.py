"""The compiled line finder (``_linescan.c``): built and loaded by ``hil.native``. Without a
compiler, when the build fails, or with ``HIL_TRIAGE_PURE=1``, triage uses ``hil.triage.scan``'s
regex, which finds the same lines (the tests compare the two); ``describe()`` says which one
runs."""

from __future__ import annotations

import ctypes
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from hil import native

SOURCE = Path(__file__).with_name("_linescan.c")
CAP = 4096  # finds per call; a block with more takes more calls
_FIELDS = 5  # per own line: its start, its body's start, its end, the newlines before it, key end
_BANNER_FIELDS = 5  # per banner: where, newlines before it, its line's start and end, owns before


def _declare(lib: ctypes.CDLL) -> None:
    function = lib.hil_lines
    function.restype = None
    function.argtypes = [ctypes.c_char_p, ctypes.c_long, ctypes.c_char_p]
    function.argtypes += [ctypes.c_long] * 4 + [ctypes.c_void_p] * 3
    function.argtypes += [ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


# hil_lines' output memory, kept for the process: "outs" (the finds) and "keys".
_buffers: dict[str, object] = {}

# Loaded once per process (forks too); None: triage is to use the regex (describe() says why).
_HELPER = native.Helper(SOURCE, "triage", "HIL_TRIAGE_PURE", _declare)
library = _HELPER.library
describe = _HELPER.describe
reset = _HELPER.reset


class Finds(NamedTuple):
    """What ``hil.triage.scan`` looks for in a block. Xen's lines ``XEN_BODIES`` finds: ``own``
    for the whole lines of their own (start, group 1's start, end, newlines before the start,
    where its key ends in ``keys``, for each), ``others`` for the rest (start, newlines before);
    TF-A's ``banners`` (where, newlines before, where its line starts and ends when it is read
    whole, else -1s, and how many ``own`` lines are before it); the ``newlines`` in the block;
    ``keys``: each own line's group 1 and a newline, one after the other. Lists, or arrays (no
    int object for what is not read)."""

    own: Sequence[int]
    others: Sequence[int]
    banners: Sequence[int]
    newlines: int
    keys: bytes


def _outs() -> list[array[int]]:
    """Where ``hil_lines`` writes its finds, kept for the process (``CAP`` may change: tests)."""
    outs: list[array[int]] | None = _buffers.get("outs")  # type: ignore[assignment]
    if outs is None or len(outs[1]) != CAP * 2:
        item = array("l").itemsize
        outs = _buffers["outs"] = [
            array("l", bytes(CAP * n * item)) for n in (_FIELDS, 2, _BANNER_FIELDS)
        ]
    return outs


def _keys_buffer(size: int) -> ctypes.Array[ctypes.c_char]:
    """Room for a block's keys (never more than the block, see hil_lines), kept from one block
    to the next: a fresh megabyte for each block costs more than finding its lines."""
    keys = _buffers.get("keys")
    if keys is None or len(keys) < size:  # type: ignore[arg-type]
        keys = _buffers["keys"] = ctypes.create_string_buffer(max(size, 1 << 20))
    return keys  # type: ignore[return-value]


def lines(
    lib: ctypes.CDLL, block: bytes, banner: bytes, first_own: bool, max_line: int, whole: int
) -> Finds:
    """``Finds`` in one pass (see ``hil_lines`` in _linescan.c for the arguments)."""
    outs = _outs()
    state = array("l", [0] * 9)
    size = len(block)
    keys = _keys_buffer(size)
    found = (array("l"), array("l"), array("l"))
    while True:
        lib.hil_lines(
            block,
            size,
            banner,
            len(banner),
            first_own,
            max_line,
            whole,
            *(out.buffer_info()[0] for out in outs),
            CAP,
            state.buffer_info()[0],
            keys,
        )
        for into, out, fields, count in zip(
            found, outs, (_FIELDS, 2, _BANNER_FIELDS), state[4:7], strict=True
        ):
            into.extend(out[: count * fields])  # arrays: copied at C speed
        if state[0] >= size and state[1] >= size:
            return Finds(*found, state[3], ctypes.string_at(keys, state[7]))
