"""What a guest sees when it talks FF-A: Xen's mediator per release, or the SPMC directly.

Each class is a fresh, stateful :class:`hil.probe.FfaEndpoint`. Only one FF-A guest exists in
this model (the probe), so with ``CONFIG_FFA_VM_TO_VM`` there are never *other* VMs to list and
the VM count Xen uses (``get_ffa_vm_count()``) is always 1 — the caller itself.

Source facts (xen-project/xen, xen/arch/arm/tee/):
- ffa_partinfo.c ``ffa_handle_partition_info_get()`` at 4.21 (forwards each query to the SPMC,
  ``ffa_get_sp_partinfo()`` validates the SPMC's size/count and copies bit-15 entries as
  min(src, dst) bytes zero-padded) and at 4.22 (answers from the cache ``sp_list``;
  ``ffa_get_sp_count()`` / ``ffa_get_sp_partinfo()`` return INVALID_PARAMETERS for a non-Nil
  UUID with no match; ``ffa_get_vm_partinfo()`` adds the caller's own entry for v1.2 guests).
- 4.20's handler (removed by "Rework partinfo_get implementation"): count only for a v1.1 guest
  with flags == 1, NO_MEMORY checked as ``page < count * dst_size`` before filtering, and each
  kept entry copied as ``dst_size`` bytes starting at the SPMC entry (not min(src, dst)).
- ffa.c ``ffa_negotiate_version()`` (4.22): calls before any FFA_VERSION get NOT_SUPPORTED; the
  first non-VERSION call freezes the negotiated version; FFA_VERSION always answers 1.2.
"""

from __future__ import annotations

import struct
import uuid as _uuid
from dataclasses import dataclass
from typing import ClassVar

from hil.ffa.abi import SMCCC_UNKNOWN_FUNCTION, V1_0, V1_1, V1_2, ErrorCode, FfaVersion, FunctionId
from hil.ffa.partition import DescriptorLayout, PartitionProperties, is_secure_id
from hil.ffa.reply import FfaReply
from hil.ffa.spmc import COUNT_FLAG, PAGE_SIZE, SpmcConfig, spmc_partition_info_get
from hil.ffa.uuid import NIL_UUID

# FFA_PART_VM_PROP (ffa_private.h): bits 1-3, plus bit 8 because dom0 is AArch64.
VM_PROPERTIES = 0x0E | PartitionProperties.AARCH64
MAX_LIVE_SPS = 64  # FFA_MAX_NUM_SP: 4.21 caps a live answer at this many SPMC entries
_UUID_FIELD = slice(8, 24)


def spmc_version_x0(spmc: SpmcConfig) -> int:
    """x0 the test SPMC's stack returns for FFA_VERSION: its version, whatever its FFA_FEATURES
    says. ``supported`` only shapes FFA_FEATURES answers: the C SPMC (and TF-A's SPMD before
    it) answers FFA_VERSION itself, so a scenario listing it as unsupported still gets one
    (checked on real Xen 4.21.2 and 4.22.0: "ARM FF-A Firmware version 1.1", then "does not
    support FFA_VERSION")."""
    return spmc.version.word


def _read(buffer: bytes, offset: int, size: int) -> bytes:
    """``size`` bytes of a page Xen reads at ``offset``; bytes the SPMC did not write (and
    reads past the page, which real Xen would take from whatever lies there) read as zero."""
    return buffer[offset : offset + size].ljust(size, b"\0")


def _entry_id(entry: bytes) -> int:
    return int.from_bytes(entry[:2], "little")


def _error(reply: FfaReply) -> FfaReply:
    """An SPMC error passed through to the guest unchanged."""
    return FfaReply(FunctionId.ERROR, reply.w2)


class Unreachable:
    """A guest without an FF-A context: Xen's vsmc answers every call SMCCC unknown function."""

    def version(self, requested: FfaVersion) -> int:
        return SMCCC_UNKNOWN_FUNCTION

    def rxtx_map(self) -> FfaReply:
        return FfaReply(SMCCC_UNKNOWN_FUNCTION)

    def partition_info_get(self, uuid: _uuid.UUID, flags: int) -> FfaReply:
        return FfaReply(SMCCC_UNKNOWN_FUNCTION)

    def rx_release(self) -> FfaReply:
        return FfaReply(SMCCC_UNKNOWN_FUNCTION)


@dataclass
class SpmcDirect:
    """No hypervisor: the probe runs as BL33 and reaches the SPMD/SPMC itself."""

    spmc: SpmcConfig

    def version(self, requested: FfaVersion) -> int:
        return spmc_version_x0(self.spmc)

    def rxtx_map(self) -> FfaReply:
        return FfaReply.success()

    def partition_info_get(self, uuid: _uuid.UUID, flags: int) -> FfaReply:
        return spmc_partition_info_get(self.spmc, uuid, flags)

    def rx_release(self) -> FfaReply:
        return FfaReply.success()


@dataclass
class GuestRx:
    """The guest's one mapped RX page as Xen tracks it (ffa_rxtx.c ffa_rx_acquire/release)."""

    mapped: bool = False
    free: bool = True

    def map(self) -> FfaReply:
        if self.mapped:
            return FfaReply.error(ErrorCode.DENIED)
        self.mapped = True
        return FfaReply.success()

    def acquire(self) -> ErrorCode | None:
        if not self.mapped:
            return ErrorCode.DENIED
        if not self.free:
            return ErrorCode.BUSY
        self.free = False
        return None

    def release(self) -> FfaReply:
        if not self.mapped or self.free:
            return FfaReply.error(ErrorCode.DENIED)
        self.free = True
        return FfaReply.success()


@dataclass
class LiveGuest:
    """Xen 4.21: every FFA_PARTITION_INFO_GET is forwarded to the SPMC, then filtered.

    FFA_VERSION answers 1.1 and records min(requested, 1.1) for a major-1 request; any call is
    accepted before FFA_VERSION (``guest_vers`` 0 counts as "not 1.0", so entries are 24 B)."""

    spmc: SpmcConfig
    firmware: bool
    rx: GuestRx
    guest_version: FfaVersion | None = None

    mediator_version: ClassVar[FfaVersion] = V1_1

    def version(self, requested: FfaVersion) -> int:
        if requested.major == self.mediator_version.major:
            self.guest_version = min(requested, self.mediator_version)
        return self.mediator_version.word

    def rxtx_map(self) -> FfaReply:
        return self.rx.map()

    def rx_release(self) -> FfaReply:
        return self.rx.release()

    @property
    def dst_size(self) -> int:
        return DescriptorLayout.V1_0 if self.guest_version == V1_0 else DescriptorLayout.V1_1

    def partition_info_get(self, uuid: _uuid.UUID, flags: int) -> FfaReply:
        if flags:
            return self._count(uuid, flags)
        if (denied := self.rx.acquire()) is not None:
            return FfaReply.error(denied)
        entries = self._sp_entries(uuid) if self.firmware else b""
        if not isinstance(entries, bytes):
            self.rx.release()
            return entries
        return FfaReply.success(len(entries) // self.dst_size, self.dst_size, entries)

    def _count(self, uuid: _uuid.UUID, flags: int) -> FfaReply:
        if self.guest_version == V1_0 or flags != COUNT_FLAG:
            return FfaReply.error(ErrorCode.INVALID_PARAMETERS)
        sps = 0
        if self.firmware:
            reply = spmc_partition_info_get(self.spmc, uuid, COUNT_FLAG)
            if not reply.ok:
                return _error(reply)
            sps = reply.w2
        # + get_ffa_vm_count() - 1: the caller is never counted, and it is the only VM.
        return FfaReply.success(sps, self.dst_size)

    def _sp_entries(self, uuid: _uuid.UUID) -> bytes | FfaReply:
        """The guest-format bit-15 entries of the SPMC's answer, or the error reply."""
        reply = spmc_partition_info_get(self.spmc, uuid, 0)
        if not reply.ok:
            return _error(reply)
        count, src_size = reply.w2, reply.w3
        if not DescriptorLayout.V1_0 <= src_size < PAGE_SIZE:
            return FfaReply.error(ErrorCode.NOT_SUPPORTED)
        count = min(count, MAX_LIVE_SPS)
        if count > PAGE_SIZE // src_size:
            return FfaReply.error(ErrorCode.NOT_SUPPORTED)
        out = bytearray()
        for n in range(count):
            entry = _read(reply.rx, n * src_size, src_size)
            if not is_secure_id(_entry_id(entry)):
                continue
            if len(out) + self.dst_size > PAGE_SIZE:
                return FfaReply.error(ErrorCode.NO_MEMORY)
            out += _read(entry, 0, self.dst_size)
        return bytes(out)


class LiveGuest420(LiveGuest):
    """Xen 4.20: like 4.21 but count mode needs a v1.1 guest exactly (no VM count), the size
    check is only ``src < 8``, overflow is checked before filtering, and each kept entry is
    copied as ``dst_size`` bytes from the SPMC buffer even when the SPMC's entries are smaller."""

    def _count(self, uuid: _uuid.UUID, flags: int) -> FfaReply:
        if flags != COUNT_FLAG or self.guest_version != V1_1:
            return FfaReply.error(ErrorCode.INVALID_PARAMETERS)
        reply = spmc_partition_info_get(self.spmc, uuid, COUNT_FLAG)
        return FfaReply.success(reply.w2, self.dst_size) if reply.ok else _error(reply)

    def _sp_entries(self, uuid: _uuid.UUID) -> bytes | FfaReply:
        reply = spmc_partition_info_get(self.spmc, uuid, 0)
        if not reply.ok:
            return _error(reply)
        count, src_size = reply.w2, reply.w3
        if src_size < DescriptorLayout.V1_0:
            return FfaReply.error(ErrorCode.NOT_SUPPORTED)
        if count * self.dst_size > PAGE_SIZE:
            return FfaReply.error(ErrorCode.NO_MEMORY)
        return b"".join(
            _read(reply.rx, n * src_size, self.dst_size)
            for n in range(count)
            if is_secure_id(_entry_id(_read(reply.rx, n * src_size, 2)))
        )


@dataclass
class CachedGuest:
    """Xen 4.22: answers come from the SP list cached at boot; the SPMC is never consulted."""

    cached_sps: tuple[bytes, ...]
    firmware: bool
    rx: GuestRx
    ffa_id: int
    vcpus: int
    spmc_map: FfaReply | None = None  # the SPMC's answer when Xen forwards the guest's RXTX_MAP
    _requested: FfaVersion | None = None
    _final: FfaVersion | None = None

    mediator_version: ClassVar[FfaVersion] = V1_2

    def version(self, requested: FfaVersion) -> int:
        if self._final is None:
            major_ok = requested.major == self.mediator_version.major
            self._requested = min(requested, self.mediator_version) if major_ok else V1_2
        return self.mediator_version.word

    def _negotiated(self) -> FfaVersion | None:
        """Freeze negotiation at the first non-VERSION call; None if there was no FFA_VERSION."""
        if self._final is None:
            self._final = self._requested
        return self._final

    def rxtx_map(self) -> FfaReply:
        if self._negotiated() is None:
            return FfaReply.error(ErrorCode.NOT_SUPPORTED)
        if not self.rx.mapped and self.spmc_map is not None and not self.spmc_map.ok:
            return _error(self.spmc_map)
        return self.rx.map()

    def rx_release(self) -> FfaReply:
        if self._negotiated() is None:
            return FfaReply.error(ErrorCode.NOT_SUPPORTED)
        return self.rx.release()

    def _matching(self, uuid: _uuid.UUID) -> list[bytes]:
        if not self.firmware:
            return []
        return [e for e in self.cached_sps if uuid == NIL_UUID or e[_UUID_FIELD] == uuid.bytes]

    def partition_info_get(self, uuid: _uuid.UUID, flags: int) -> FfaReply:
        version = self._negotiated()
        if version is None:
            return FfaReply.error(ErrorCode.NOT_SUPPORTED)
        sps = self._matching(uuid)
        no_match = self.firmware and uuid != NIL_UUID and not sps
        own_entry = uuid == NIL_UUID and version >= V1_2
        if flags:
            if version == V1_0 or flags != COUNT_FLAG:
                return FfaReply.error(ErrorCode.INVALID_PARAMETERS)
            if no_match:
                return FfaReply.error(ErrorCode.INVALID_PARAMETERS)
            return FfaReply.success(len(sps) + own_entry, 0)
        if (denied := self.rx.acquire()) is not None:
            return FfaReply.error(denied)
        dst_size = DescriptorLayout.V1_0 if version == V1_0 else DescriptorLayout.V1_1
        entries = [self._guest_entry(e, uuid, dst_size) for e in sps]
        if own_entry:
            own = struct.pack("<HHI", self.ffa_id, self.vcpus, VM_PROPERTIES)
            entries.append(_read(own, 0, dst_size))
        if no_match or len(entries) * dst_size > PAGE_SIZE:
            self.rx.release()
            code = ErrorCode.INVALID_PARAMETERS if no_match else ErrorCode.NO_MEMORY
            return FfaReply.error(code)
        w3 = 0 if version == V1_0 else dst_size
        return FfaReply.success(len(entries), w3, b"".join(entries))

    @staticmethod
    def _guest_entry(entry: bytes, uuid: _uuid.UUID, dst_size: int) -> bytes:
        out = bytearray(_read(entry, 0, dst_size))
        if uuid != NIL_UUID and dst_size >= DescriptorLayout.V1_1:
            out[_UUID_FIELD] = bytes(16)  # MBZ for a non-Nil query
        return bytes(out)
