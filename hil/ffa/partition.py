"""Partition-information descriptors (FF-A v1.0 8 B, v1.1/v1.2 24 B, v1.3 48 B) and the
bit-15 ID convention Xen relies on to tell secure partitions from VMs."""

from __future__ import annotations

import struct
import uuid as _uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from hil.ffa.errors import FfaFormatError
from hil.ffa.uuid import NIL_UUID

SECURE_ID_BIT = 1 << 15


class PartitionProperties(IntFlag):
    """Named bits of the descriptor's properties word (bits 5:4 are the id type, see IdType)."""

    DIRECT_REQ_RECV = 1 << 0
    DIRECT_REQ_SEND = 1 << 1
    INDIRECT_MSG = 1 << 2
    NOTIFICATIONS = 1 << 3
    VM_CREATED = 1 << 6
    VM_DESTROYED = 1 << 7
    AARCH64 = 1 << 8
    DIRECT_REQ2_RECV = 1 << 9
    DIRECT_REQ2_SEND = 1 << 10


class IdType(IntEnum):
    PE_ENDPOINT = 0
    INDEPENDENT_SEPID = 1
    DEPENDENT_SEPID = 2
    AUXILIARY = 3


class DescriptorLayout(IntEnum):
    """Descriptor sizes by FF-A version; the value is the size in bytes."""

    V1_0 = 8
    V1_1 = 24
    V1_3 = 48


_V1_0 = struct.Struct("<HHI")
_V1_3_TAIL = struct.Struct("<16sII")


def check_partition_id(value: int) -> int:
    if not 0 <= value <= 0xFFFF:
        raise FfaFormatError(f"partition id {value} is outside u16 (0..0xffff)")
    return value


def is_secure_id(partition_id: int) -> bool:
    """Bit 15 set marks a secure endpoint (SP or SPMC); Xen drops SPs without it."""
    return bool(check_partition_id(partition_id) & SECURE_ID_BIT)


@dataclass(frozen=True)
class PartitionInfo:
    """One partition as a descriptor describes it. ``properties`` stays a raw u32 so crafted
    descriptors with MBZ bits set survive a round trip; :attr:`flags` gives the named view."""

    id: int
    exec_ctx: int = 1
    properties: int = 0
    uuid: _uuid.UUID = NIL_UUID
    image_uuid: _uuid.UUID = NIL_UUID
    ffa_version: int = 0
    reserved: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        check_partition_id(self.id)
        if not 0 <= self.exec_ctx <= 0xFFFF:
            raise FfaFormatError(f"execution context count {self.exec_ctx} is outside u16")
        for name in ("properties", "ffa_version", "reserved"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFFFFFFFF:
                raise FfaFormatError(f"partition {name} {value:#x} is outside u32")

    @property
    def is_secure(self) -> bool:
        return is_secure_id(self.id)

    @property
    def flags(self) -> PartitionProperties:
        return PartitionProperties(self.properties)

    @property
    def id_type(self) -> IdType:
        return IdType((self.properties >> 4) & 0x3)

    def pack(self, layout: DescriptorLayout = DescriptorLayout.V1_1) -> bytes:
        head = _V1_0.pack(self.id, self.exec_ctx, self.properties)
        if layout is DescriptorLayout.V1_0:
            return head
        head += self.uuid.bytes
        if layout is DescriptorLayout.V1_1:
            return head
        return head + _V1_3_TAIL.pack(self.image_uuid.bytes, self.ffa_version, self.reserved)

    @classmethod
    def unpack(cls, data: bytes, layout: DescriptorLayout | None = None) -> PartitionInfo:
        """Decode one descriptor; the layout is taken from ``len(data)`` when not given."""
        if layout is None:
            try:
                layout = DescriptorLayout(len(data))
            except ValueError:
                raise FfaFormatError(
                    f"a partition descriptor is 8, 24 or 48 bytes, not {len(data)}"
                ) from None
        if len(data) != layout.value:
            raise FfaFormatError(
                f"a {layout.name} partition descriptor is {layout.value} bytes, got {len(data)}"
            )
        pid, ctx, props = _V1_0.unpack_from(data)
        if layout is DescriptorLayout.V1_0:
            return cls(pid, ctx, props)
        uuid = _uuid.UUID(bytes=bytes(data[8:24]))
        if layout is DescriptorLayout.V1_1:
            return cls(pid, ctx, props, uuid)
        image, version, reserved = _V1_3_TAIL.unpack_from(data, 24)
        return cls(pid, ctx, props, uuid, _uuid.UUID(bytes=image), version, reserved)


def pack_descriptors(
    infos: Iterable[PartitionInfo], layout: DescriptorLayout = DescriptorLayout.V1_1
) -> bytes:
    return b"".join(info.pack(layout) for info in infos)


def unpack_descriptors(data: bytes, layout: DescriptorLayout) -> list[PartitionInfo]:
    if len(data) % layout.value:
        raise FfaFormatError(
            f"{len(data)} bytes is not a whole number of {layout.value}-byte descriptors"
        )
    return [
        PartitionInfo.unpack(data[off : off + layout.value], layout)
        for off in range(0, len(data), layout.value)
    ]
