"""UUIDs as FF-A carries them: 16 bytes in RFC-4122 text order in descriptors, and the same bytes
as little-endian 32-bit words in w1..w4 of a request (64-bit halves for PARTITION_INFO_GET_REGS)."""

from __future__ import annotations

import struct
import uuid as _uuid

from hil.ffa.errors import FfaFormatError

NIL_UUID = _uuid.UUID(int=0)

_WORDS = struct.Struct("<4I")
_HALVES = struct.Struct("<2Q")


def parse_uuid(text: str) -> _uuid.UUID:
    """Parse canonical 8-4-4-4-12 UUID text; raise on anything else."""
    try:
        value = _uuid.UUID(text.strip())
    except (ValueError, AttributeError) as exc:
        raise FfaFormatError(f"{text!r} is not a UUID (expected 8-4-4-4-12 hex digits)") from exc
    if str(value) != text.strip().lower():
        raise FfaFormatError(f"{text!r} is not a canonical 8-4-4-4-12 UUID")
    return value


def uuid_to_words(value: _uuid.UUID) -> tuple[int, int, int, int]:
    """The w1..w4 register words a guest passes for ``value``."""
    return _WORDS.unpack(value.bytes)


def uuid_from_words(w1: int, w2: int, w3: int, w4: int) -> _uuid.UUID:
    """The UUID whose descriptor bytes Xen compares against the request words w1..w4."""
    try:
        return _uuid.UUID(bytes=_WORDS.pack(w1, w2, w3, w4))
    except struct.error as exc:
        raise FfaFormatError(f"UUID register words must be u32: {exc}") from exc


def uuid_to_regs64(value: _uuid.UUID) -> tuple[int, int]:
    """x1, x2 for FFA_PARTITION_INFO_GET_REGS."""
    return _HALVES.unpack(value.bytes)
