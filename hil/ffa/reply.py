"""What an FF-A call returns: the registers a caller checks and the RX-buffer bytes it reads."""

from __future__ import annotations

from dataclasses import dataclass

from hil.ffa.abi import SMCCC_UNKNOWN_FUNCTION, ErrorCode, FunctionId, error_word, signed_error


@dataclass(frozen=True)
class FfaReply:
    w0: int
    w2: int = 0
    w3: int = 0
    rx: bytes = b""

    @classmethod
    def success(cls, w2: int = 0, w3: int = 0, rx: bytes = b"") -> FfaReply:
        return cls(FunctionId.SUCCESS_32, w2, w3, rx)

    @classmethod
    def error(cls, code: ErrorCode) -> FfaReply:
        return cls(FunctionId.ERROR, error_word(code))

    @property
    def defines_args(self) -> bool:
        """Whether w1..w7 carry an answer: not after SMCCC "unknown function"."""
        return self.w0 & 0xFFFFFFFF != SMCCC_UNKNOWN_FUNCTION

    @property
    def ok(self) -> bool:
        return self.w0 in (FunctionId.SUCCESS_32, FunctionId.SUCCESS_64)

    @property
    def error_code(self) -> ErrorCode | int | None:
        """The error for an FFA_ERROR reply (a plain int when it is not a known code)."""
        if self.w0 != FunctionId.ERROR:
            return None
        code = signed_error(self.w2)
        try:
            return ErrorCode(code)
        except ValueError:
            return code

    def describe(self) -> str:
        if self.ok:
            return f"SUCCESS w2={self.w2:#x} w3={self.w3:#x} rx={len(self.rx)}B"
        code = self.error_code
        if code is not None:
            return f"ERROR {code.name if isinstance(code, ErrorCode) else code}"
        return f"w0={self.w0:#010x}"
