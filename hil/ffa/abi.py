"""FF-A function IDs, error codes and the version word (FF-A v1.1/v1.2, Xen's ffa_private.h)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from hil.ffa.errors import FfaFormatError

# SMCCC's "unknown function" (w0 = -1): the only register it defines is w0. Xen answers any SMC it
# does not handle so (a guest without FF-A, e.g. when the mediator is off) and leaves x1..x7 as
# the guest passed them, so the other registers must never be predicted or judged.
SMCCC_UNKNOWN_FUNCTION = 0xFFFFFFFF


class FunctionId(IntEnum):
    ERROR = 0x84000060
    SUCCESS_32 = 0x84000061
    SUCCESS_64 = 0xC4000061
    INTERRUPT = 0x84000062
    VERSION = 0x84000063
    FEATURES = 0x84000064
    RX_RELEASE = 0x84000065
    RXTX_MAP_32 = 0x84000066
    RXTX_MAP_64 = 0xC4000066
    RXTX_UNMAP = 0x84000067
    PARTITION_INFO_GET = 0x84000068
    ID_GET = 0x84000069
    MSG_WAIT = 0x8400006B
    RUN = 0x8400006D
    MSG_SEND_DIRECT_REQ_32 = 0x8400006F
    MSG_SEND_DIRECT_REQ_64 = 0xC400006F
    MSG_SEND_DIRECT_RESP_32 = 0x84000070
    MSG_SEND_DIRECT_RESP_64 = 0xC4000070
    MEM_SHARE_32 = 0x84000073
    MEM_SHARE_64 = 0xC4000073
    MEM_RECLAIM = 0x84000077
    NOTIFICATION_BITMAP_CREATE = 0x8400007D
    NOTIFICATION_BITMAP_DESTROY = 0x8400007E
    NOTIFICATION_BIND = 0x8400007F
    NOTIFICATION_UNBIND = 0x84000080
    NOTIFICATION_SET = 0x84000081
    NOTIFICATION_GET = 0x84000082
    NOTIFICATION_INFO_GET_32 = 0x84000083
    NOTIFICATION_INFO_GET_64 = 0xC4000083
    RX_ACQUIRE = 0x84000084
    SPM_ID_GET = 0x84000085
    MSG_SEND2 = 0x84000086
    PARTITION_INFO_GET_REGS = 0xC400008B
    MSG_SEND_DIRECT_REQ2 = 0xC400008D
    MSG_SEND_DIRECT_RESP2 = 0xC400008E

    @property
    def macro(self) -> str:
        """The C macro name Xen prints, e.g. ``FFA_RUN``."""
        return f"FFA_{self.name}"


class ErrorCode(IntEnum):
    NOT_SUPPORTED = -1
    INVALID_PARAMETERS = -2
    NO_MEMORY = -3
    BUSY = -4
    INTERRUPTED = -5
    DENIED = -6
    RETRY = -7
    ABORTED = -8
    NO_DATA = -9


def error_word(code: int) -> int:
    """The w2 register value carrying an error code: its low 32 bits."""
    return code & 0xFFFFFFFF


def signed_error(word: int) -> int:
    """Inverse of :func:`error_word`: w2 read back as a signed 32-bit error code."""
    word &= 0xFFFFFFFF
    return word - (1 << 32) if word & 0x80000000 else word


_VERSION_TEXT = re.compile(r"^(\d+)\.(\d+)$")


@dataclass(frozen=True, order=True)
class FfaVersion:
    """An FF-A version; its word is bit 31 = 0, major in [30:16], minor in [15:0]."""

    major: int
    minor: int

    def __post_init__(self) -> None:
        if not 0 <= self.major <= 0x7FFF:
            raise FfaFormatError(f"FF-A major version {self.major} is outside 0..32767")
        if not 0 <= self.minor <= 0xFFFF:
            raise FfaFormatError(f"FF-A minor version {self.minor} is outside 0..65535")

    @property
    def word(self) -> int:
        return (self.major << 16) | self.minor

    @classmethod
    def from_word(cls, word: int) -> FfaVersion:
        if not 0 <= word <= 0x7FFFFFFF:
            raise FfaFormatError(f"FF-A version word {word:#x} has bit 31 set or is not a u32")
        return cls(word >> 16, word & 0xFFFF)

    @classmethod
    def parse(cls, text: str) -> FfaVersion:
        match = _VERSION_TEXT.match(text.strip())
        if not match:
            raise FfaFormatError(f"FF-A version {text!r} is not of the form MAJOR.MINOR")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


V1_0 = FfaVersion(1, 0)
V1_1 = FfaVersion(1, 1)
V1_2 = FfaVersion(1, 2)
