"""What the project's test SPMC serves, as data (``SpmcConfig``, the blob it reads) and as behaviour
(``spmc_partition_info_get``, the reference the C SPMC under firmware/test-spmc mirrors).

The test SPMC serves its table exactly as crafted: ``count`` and ``fpi_size`` are reported as
given even when they disagree with ``data``, so malformed lists reach the hypervisor under test.
It ignores the caller's FF-A version (a v1.0 caller gets the crafted table too)."""

from __future__ import annotations

import struct
import uuid as _uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from hil.ffa.abi import V1_1, ErrorCode, FfaVersion, FunctionId
from hil.ffa.errors import FfaFormatError
from hil.ffa.partition import DescriptorLayout, PartitionInfo, pack_descriptors
from hil.ffa.reply import FfaReply
from hil.ffa.uuid import NIL_UUID

PAGE_SIZE = 4096
MAX_SUPPORTED_FIDS = 64
COUNT_FLAG = 0x1

MAGIC = b"HILSPMC1"
_HEADER = struct.Struct("<8sIIIIII")

DEFAULT_SUPPORTED: tuple[FunctionId, ...] = (
    FunctionId.VERSION,
    FunctionId.FEATURES,
    FunctionId.RX_RELEASE,
    FunctionId.RXTX_MAP_64,
    FunctionId.RXTX_UNMAP,
    FunctionId.PARTITION_INFO_GET,
    FunctionId.ID_GET,
    FunctionId.MSG_SEND_DIRECT_REQ_32,
    FunctionId.MSG_SEND_DIRECT_REQ_64,
)


@dataclass(frozen=True)
class SpmcConfig:
    """The partition list exactly as the SPMC reports it at FFA_PARTITION_INFO_GET (Nil UUID)."""

    data: bytes
    count: int
    fpi_size: int
    version: FfaVersion = V1_1
    supported: tuple[int, ...] = field(default=tuple(int(f) for f in DEFAULT_SUPPORTED))

    def __post_init__(self) -> None:
        if len(self.data) > PAGE_SIZE:
            raise FfaFormatError(f"descriptor data is {len(self.data)} bytes, more than one page")
        for name in ("count", "fpi_size"):
            if not 0 <= getattr(self, name) <= 0xFFFFFFFF:
                raise FfaFormatError(f"SPMC {name} {getattr(self, name)} is outside u32")
        if len(self.supported) > MAX_SUPPORTED_FIDS:
            raise FfaFormatError(
                f"at most {MAX_SUPPORTED_FIDS} supported FIDs, got {len(self.supported)}"
            )

    @classmethod
    def from_partitions(
        cls,
        partitions: Iterable[PartitionInfo],
        layout: DescriptorLayout = DescriptorLayout.V1_1,
        **kwargs: object,
    ) -> SpmcConfig:
        """A well-formed list: count and fpi_size agree with the descriptors."""
        parts = list(partitions)
        return cls(pack_descriptors(parts, layout), len(parts), layout.value, **kwargs)  # type: ignore[arg-type]

    def entries(self) -> list[bytes]:
        """The descriptors a UUID filter can see: only for fpi_size >= 24, at most ``count``, and
        only those wholly inside ``data``."""
        if self.fpi_size < DescriptorLayout.V1_1:
            return []
        fits = len(self.data) // self.fpi_size
        return [
            self.data[i * self.fpi_size : (i + 1) * self.fpi_size]
            for i in range(min(self.count, fits))
        ]

    def supports(self, fid: int) -> bool:
        return fid in self.supported

    def encode(self) -> bytes:
        header = _HEADER.pack(
            MAGIC,
            self.version.word,
            self.count,
            self.fpi_size,
            len(self.data),
            len(self.supported),
            0,
        )
        return header + struct.pack(f"<{len(self.supported)}I", *self.supported) + self.data

    @classmethod
    def decode(cls, blob: bytes) -> SpmcConfig:
        if len(blob) < _HEADER.size:
            raise FfaFormatError(f"SPMC config blob is {len(blob)} bytes, shorter than its header")
        magic, version, count, fpi_size, data_len, n_fids, _ = _HEADER.unpack_from(blob)
        if magic != MAGIC:
            raise FfaFormatError(f"SPMC config blob has magic {magic!r}, expected {MAGIC!r}")
        fids_end = _HEADER.size + 4 * n_fids
        if n_fids > MAX_SUPPORTED_FIDS or len(blob) != fids_end + data_len:
            raise FfaFormatError("SPMC config blob length does not match its header")
        fids = struct.unpack_from(f"<{n_fids}I", blob, _HEADER.size)
        return cls(blob[fids_end:], count, fpi_size, FfaVersion.from_word(version), fids)


def spmc_partition_info_get(config: SpmcConfig, uuid: _uuid.UUID, flags: int) -> FfaReply:
    """The test SPMC's answer to FFA_PARTITION_INFO_GET (RX/TX mapped, RX buffer free)."""
    if uuid == NIL_UUID:
        if flags & COUNT_FLAG:
            return FfaReply.success(config.count, 0)
        return FfaReply.success(config.count, config.fpi_size, config.data)
    matches = [entry for entry in config.entries() if entry[8:24] == uuid.bytes]
    if not matches:
        return FfaReply.error(ErrorCode.INVALID_PARAMETERS)
    if flags & COUNT_FLAG:
        return FfaReply.success(len(matches), 0)
    return FfaReply.success(len(matches), config.fpi_size, b"".join(matches))


def spmc_rx_release(rx_full: bool = True) -> FfaReply:
    """The test SPMC's answer to FFA_RX_RELEASE, whatever its FFA_FEATURES says: it releases
    a buffer a list call filled (``rx_full``), and denies any other release."""
    return FfaReply.success() if rx_full else FfaReply.error(ErrorCode.DENIED)


def spmc_rxtx_map(mapped: bool, page_count: int) -> FfaReply:
    """The test SPMC's answer to FFA_RXTX_MAP: it holds one caller's buffers (``mapped``: it
    already does), and a map of zero pages is invalid."""
    if mapped:
        return FfaReply.error(ErrorCode.DENIED)
    if page_count == 0:
        return FfaReply.error(ErrorCode.INVALID_PARAMETERS)
    return FfaReply.success()
