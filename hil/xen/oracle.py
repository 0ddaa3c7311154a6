"""The oracle: for what the SPMC returns at boot and a Xen behaviour profile, what Xen prints
during FF-A init and what a guest's FF-A calls answer. Pure; every console text is rendered
through :mod:`hil.xen.messages`.

Source facts (xen-project/xen, xen/arch/arm/tee/, see shared/reference/xen-ffa-partinfo.md):
- ffa.c ``ffa_probe()`` / ``ffa_probe_fw()``: mediator version line, SMCCC >= 1.2 check,
  FFA_VERSION (4.22 masks x0 to 32 bits; 4.20/4.21 compare the whole x0 with -1), major must be 1
  and minor >= 1, then one FFA_FEATURES per ``ffa_fw_abi_needed[]`` entry with a "does not
  support" line each, RXTX map, ``ffa_partinfo_init()``; every failure ends in "No firmware
  support". ``ffa_probe_vm_to_vm()`` runs only when the firmware probe failed.
- ffa_partinfo.c 4.22 ``ffa_partinfo_init()``: needs PARTITION_INFO_GET and
  MSG_SEND_DIRECT_REQ_32 (else fails silently), rejects count >= 64, then
  ``ffa_sp_list_cache_init()`` (fpi_size in [24, 4096), count <= 4096 / fpi_size; header line
  ``printk_once``, one id line per non-bit-15 entry), then releases the SPMC RX buffer only if
  the query succeeded ("Failed to cache" is printed before the release warning).
- ffa_partinfo.c 4.21 ``ffa_partinfo_init()`` / ``init_subscribers()``: count >= 64 rejected,
  fpi_size < 24 -> "partition info size invalid" (no upper bound, no count check), and one
  two-line printk per non-bit-15 entry whose second line has no level marker. 4.20: count >=
  0xFFFF -> "Impossible number of SPs".
- tee.c ``tee_init()`` (4.21+): ``tee=ffa`` prints its selection first and panics if the probe
  fails; any other name panics as unsupported (this model assumes a build with only FF-A).

Confirmed on real Xen (4.20.4, 4.21.2, 4.22.0, 4.23-unstable c447b7308b built from
``../shared/xen`` by hil, on the qemu-virt board: ``hil run --lab real-xen.toml``, every
scenario PASS, 2026-12-01), where the sources alone left room for doubt:
- SEND2 workaround (4.22+): both WARNING lines come after the last "does not support" line and
  before the SP list lines (scenario ``send2-without-acquire``). With RX_ACQUIRE taken as
  supported, a guest's FFA_RXTX_MAP is first forwarded to the SPMC, which the test SPMC (already
  holding Xen's buffers) denies: the guest gets DENIED and every list query DENIED after it.
- 4.20/4.21 record every major-1 FFA_VERSION request as min(requested, 1.1), the last one
  winning (``duplicate-ids``: 1.0 after 1.2 gives 8-byte entries; ``guest-v1-2``: 1.2 gives 1.1).
- 4.22 zeroes the UUID field of entries answering a non-Nil query for v1.1+ guests; 4.20/4.21
  return the SPMC's bytes (every scenario's per-UUID list query).
- A guest without FF-A gets SMCCC "unknown function" with only x0 set: x1..x7 keep what the guest
  passed (the probe's own UUID words and RX address), so nothing but w0 is predicted
  (``count-64``, ``fpi-size-8``, ``page-overflow-41``, ``firmware-1-0``).
- The caller's own entry (4.22, v1.2 guests) carries dom0's vCPU count, which Xen sets to the
  number of CPUs unless ``dom0_max_vcpus`` says otherwise: boards always pass it (XenOptions).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hil.errors import ConfigError
from hil.ffa.abi import V1_1, V1_2, FfaVersion, FunctionId, signed_error
from hil.ffa.partition import DescriptorLayout, is_secure_id
from hil.ffa.reply import FfaReply
from hil.ffa.spmc import (
    PAGE_SIZE,
    SpmcConfig,
    spmc_partition_info_get,
    spmc_rx_release,
    spmc_rxtx_map,
)
from hil.ffa.uuid import NIL_UUID
from hil.probe import FfaEndpoint, ProbePlan, ProbeTranscript, run_plan
from hil.xen.guests import (
    CachedGuest,
    GuestRx,
    LiveGuest,
    LiveGuest420,
    SpmcDirect,
    Unreachable,
    spmc_version_x0,
)
from hil.xen.messages import Level, message

SMCCC_1_2 = 0x10002
MAX_NUM_SP = 64  # FFA_MAX_NUM_SP (4.21+): init accepts at most 63
BOOT_VCPU = "d[IDLE]v0"  # what gprintk's %pv prints during Xen's presmp initcalls
_X0_64 = (1 << 64) - 1

F = FunctionId
_ABIS_4_20: tuple[FunctionId, ...] = (
    F.VERSION, F.FEATURES, F.NOTIFICATION_BITMAP_CREATE, F.NOTIFICATION_BITMAP_DESTROY,
    F.PARTITION_INFO_GET, F.NOTIFICATION_INFO_GET_64, F.NOTIFICATION_GET, F.RX_RELEASE,
    F.RXTX_MAP_64, F.RXTX_UNMAP, F.MEM_SHARE_32, F.MEM_SHARE_64, F.MEM_RECLAIM,
    F.MSG_SEND_DIRECT_REQ_32, F.MSG_SEND_DIRECT_REQ_64, F.MSG_SEND2,
)  # fmt: skip
_ABIS_4_22: tuple[FunctionId, ...] = (
    F.VERSION, F.FEATURES, F.NOTIFICATION_BITMAP_CREATE, F.NOTIFICATION_BITMAP_DESTROY,
    F.PARTITION_INFO_GET, F.NOTIFICATION_INFO_GET_64, F.NOTIFICATION_GET, F.RX_ACQUIRE,
    F.RX_RELEASE, F.RXTX_MAP_64, F.RXTX_UNMAP, F.MEM_SHARE_64, F.MEM_RECLAIM,
    F.MSG_SEND_DIRECT_REQ_32, F.MSG_SEND_DIRECT_REQ_64, F.MSG_SEND2, F.MSG_SEND_DIRECT_REQ2,
    F.RUN,
)  # fmt: skip


@dataclass(frozen=True)
class XenOptions:
    """How Xen is built and booted. A board boots Xen with :meth:`boot_args` and its bundle
    records these options, which is where a check takes the oracle's from: the two cannot
    disagree (a board that let Xen pick dom0's vCPU count would, on any multi-core machine)."""

    tee_cmdline: str | None = None
    vm_to_vm: bool = False
    debug: bool = False
    smccc_version: int = SMCCC_1_2
    dom0_vcpus: int = 1

    @classmethod
    def of_build(cls, kconfig: Mapping[str, str], dom0_vcpus: int = 1) -> XenOptions:
        """The options of a Xen built with ``kconfig`` (``CONFIG_NAME -> value``)."""
        return cls(
            vm_to_vm=kconfig.get("CONFIG_FFA_VM_TO_VM") == "y",
            debug=kconfig.get("CONFIG_DEBUG") == "y",
            dom0_vcpus=dom0_vcpus,
        )

    def boot_args(self) -> tuple[str, ...]:
        """The Xen command-line options these options stand for. ``dom0_max_vcpus`` is always
        given: without it Xen gives dom0 one vCPU per physical CPU."""
        args = [f"dom0_max_vcpus={self.dom0_vcpus}"]
        if self.tee_cmdline is not None:
            args.append(f"tee={self.tee_cmdline}")
        return tuple(args)


@dataclass(frozen=True)
class ConsoleLine:
    key: str
    text: str
    level: Level


@dataclass(frozen=True)
class XenBoot:
    lines: tuple[ConsoleLine, ...]
    ffa_enabled: bool
    cached_sps: tuple[bytes, ...] | None
    # The firmware ABIs Xen uses (FFA_FEATURES answers plus workarounds) when FF-A came up.
    firmware_abis: frozenset[int] = frozenset()


_Init = tuple[bool, tuple[bytes, ...] | None]  # (firmware usable, XenBoot.cached_sps)


@dataclass
class _Console:
    """Collects the lines a build prints: release builds hide DEBUG."""

    debug: bool
    lines: list[ConsoleLine] = field(default_factory=list)

    def say(self, key: str, level: Level | None = None, **values: Any) -> None:
        msg = message(key)
        level = level or msg.level
        if self.debug or level is not Level.DEBUG:
            self.lines.append(ConsoleLine(key, msg.render(**values), level))


class XenProfile(ABC):
    """One hypervisor behaviour. Adding a profile = one small subclass listed in PROFILES."""

    name: ClassVar[str]
    mediator_version: ClassVar[FfaVersion | None]

    @abstractmethod
    def boot(self, spmc: SpmcConfig, options: XenOptions = XenOptions()) -> XenBoot: ...

    @abstractmethod
    def guest(
        self, spmc: SpmcConfig, boot: XenBoot, options: XenOptions = XenOptions(), domid: int = 0
    ) -> FfaEndpoint: ...


class NoHypervisor(XenProfile):
    """The probe is BL33 and talks to the SPMD/SPMC itself: no Xen lines, FF-A always there."""

    name = "none"
    mediator_version = None

    def boot(self, spmc: SpmcConfig, options: XenOptions = XenOptions()) -> XenBoot:
        return XenBoot((), True, None)

    def guest(
        self, spmc: SpmcConfig, boot: XenBoot, options: XenOptions = XenOptions(), domid: int = 0
    ) -> FfaEndpoint:
        return SpmcDirect(spmc)


class XenMediator(XenProfile):
    """Xen's FF-A mediator: the probe sequence shared by all releases, with the per-release
    differences as class attributes and the partinfo init / guest behaviour as methods."""

    mediator_version: ClassVar[FfaVersion]
    abis_needed: ClassVar[tuple[FunctionId, ...]]
    abi_unsupported_level: ClassVar[Level]
    version_x0_mask: ClassVar[int]
    version_failed_key: ClassVar[str]
    has_tee_option: ClassVar[bool]
    has_vm_to_vm: ClassVar[bool]
    rx_acquire_workaround: ClassVar[bool] = False

    def boot(self, spmc: SpmcConfig, options: XenOptions = XenOptions()) -> XenBoot:
        con = _Console(options.debug)
        cmdline = options.tee_cmdline if self.has_tee_option else None
        if cmdline is not None and cmdline != "ffa":
            con.say("panic", cpu=0)
            con.say("tee_not_supported", name=cmdline)
            return XenBoot(tuple(con.lines), False, self._cache_after_failure())
        if cmdline is not None:
            con.say("tee_selected", name=cmdline)
        con.say("mediator_version", version=str(self.mediator_version))
        firmware, cached, abis = self._probe_firmware(spmc, options, con)
        active = firmware or (options.vm_to_vm and self.has_vm_to_vm)
        if active and not firmware:
            con.say("vm_to_vm_insecure")
            con.say("vm_to_vm_only")
        if active:
            con.say("tee_using", name="FF-A")
        elif cmdline is not None:
            con.say("panic", cpu=0)
            con.say("tee_probe_failed", name=cmdline)
        return XenBoot(tuple(con.lines), firmware, cached, abis)

    def guest(
        self, spmc: SpmcConfig, boot: XenBoot, options: XenOptions = XenOptions(), domid: int = 0
    ) -> FfaEndpoint:
        if not boot.ffa_enabled and not (options.vm_to_vm and self.has_vm_to_vm):
            return Unreachable()
        if options.tee_cmdline is not None and self.has_tee_option and options.tee_cmdline != "ffa":
            return Unreachable()
        return self._guest(spmc, boot, options, domid)

    @abstractmethod
    def _guest(
        self, spmc: SpmcConfig, boot: XenBoot, options: XenOptions, domid: int
    ) -> FfaEndpoint: ...

    @abstractmethod
    def _partinfo_init(self, spmc: SpmcConfig, supported: set[int], con: _Console) -> _Init:
        """The SP list step: whether it succeeded and what XenBoot.cached_sps holds."""

    @abstractmethod
    def _cache_after_failure(self) -> tuple[bytes, ...] | None: ...

    def _probe_firmware(
        self, spmc: SpmcConfig, options: XenOptions, con: _Console
    ) -> tuple[bool, tuple[bytes, ...] | None, frozenset[int]]:
        """(firmware usable, XenBoot.cached_sps, XenBoot.firmware_abis)."""
        if options.smccc_version < SMCCC_1_2:
            con.say("smccc_unsupported", found=options.smccc_version, needed=SMCCC_1_2)
        elif self._firmware_version(spmc_version_x0(spmc), con):
            supported = self._discover_abis(spmc, con)
            if F.RXTX_MAP_64 not in supported:
                con.say("rxtx_init_failed")
            elif (init := self._partinfo_init(spmc, supported, con))[0]:
                return True, init[1], frozenset(supported)
        con.say("no_firmware")
        return False, self._cache_after_failure(), frozenset()

    def _firmware_version(self, x0: int, con: _Console) -> bool:
        if x0 & self.version_x0_mask == self.version_x0_mask:
            con.say(self.version_failed_key, vcpu=BOOT_VCPU)
            return False
        major, minor = (x0 >> 16) & 0x7FFF, x0 & 0xFFFF
        version = f"{major}.{minor}"
        if major != self.mediator_version.major or minor < V1_1.minor:
            con.say("incompatible_version", version=version)
            return False
        con.say("firmware_version", version=version)
        return True

    def _discover_abis(self, spmc: SpmcConfig, con: _Console) -> set[int]:
        """FFA_FEATURES per needed ABI, as the test SPMC answers each: by its list alone (one
        reporting FFA_FEATURES itself as unsupported still answers the others; real Xen 4.21.2
        and 4.22.0 then print only "does not support FFA_FEATURES")."""
        supported: set[int] = set()
        for fid in self.abis_needed:
            if spmc.supports(fid):
                supported.add(fid)
            else:
                con.say("abi_unsupported", self.abi_unsupported_level, abi=fid.macro)
        if (
            self.rx_acquire_workaround
            and F.MSG_SEND2 in supported
            and F.RX_ACQUIRE not in supported
        ):
            con.say("send2_without_acquire")
            con.say("rx_acquire_workaround")
            supported.add(F.RX_ACQUIRE)
        return supported

    @staticmethod
    def _spmc_list(spmc: SpmcConfig, supported: set[int], con: _Console) -> FfaReply | None:
        """Xen's Nil-UUID query at init, or None when it is not made / failed."""
        if not {F.PARTITION_INFO_GET, F.MSG_SEND_DIRECT_REQ_32} <= supported:
            return None
        reply = spmc_partition_info_get(spmc, NIL_UUID, 0)
        if not reply.ok:
            con.say("sp_list_failed", error=signed_error(reply.w2))
            return None
        return reply


class PreCacheMediator(XenMediator):
    """Xen before the SP cache (4.20, 4.21): init only validates the list; guests query live."""

    abis_needed = _ABIS_4_20
    abi_unsupported_level = Level.INFO
    version_x0_mask = _X0_64
    version_failed_key = "version_failed_vcpu"
    max_sp_key: ClassVar[str]
    max_sp: ClassVar[int]
    guest_type: ClassVar[type[LiveGuest]]

    def _partinfo_init(self, spmc: SpmcConfig, supported: set[int], con: _Console) -> _Init:
        reply = self._spmc_list(spmc, supported, con)
        if reply is None:
            return False, None
        count, fpi_size = reply.w2, reply.w3
        if count >= self.max_sp:
            con.say(self.max_sp_key, count=count, max=self.max_sp)
            return False, None
        if fpi_size < DescriptorLayout.V1_1:
            con.say("partinfo_size_invalid", size=fpi_size)
            return False, None
        # init_subscribers() takes a uint16_t count and reads ids at n * fpi_size, unchecked.
        for n in range(count & 0xFFFF):
            offset = n * fpi_size
            sp_id = int.from_bytes(reply.rx[offset : offset + 2].ljust(2, b"\0"), "little")
            if not is_secure_id(sp_id):
                con.say("id_convention")
                con.say("sp_unusable", Level.INFO, id=sp_id)
        return True, None

    def _cache_after_failure(self) -> None:
        return None

    def _guest(
        self, spmc: SpmcConfig, boot: XenBoot, options: XenOptions, domid: int
    ) -> FfaEndpoint:
        return self.guest_type(spmc, boot.ffa_enabled, GuestRx())


class CachingMediator(XenMediator):
    """Xen with the SP cache (4.22+): the list is read once at init, never again."""

    abis_needed = _ABIS_4_22
    abi_unsupported_level = Level.WARNING
    version_x0_mask = 0xFFFFFFFF
    version_failed_key = "version_failed"
    rx_acquire_workaround = True

    def _partinfo_init(self, spmc: SpmcConfig, supported: set[int], con: _Console) -> _Init:
        reply = self._spmc_list(spmc, supported, con)
        if reply is None:  # no SPMC RX_RELEASE: Xen only releases after a successful query
            return False, ()
        cached: tuple[bytes, ...] | None = None
        if reply.w2 >= MAX_NUM_SP:
            con.say("too_many_sps", count=reply.w2, max=MAX_NUM_SP)
        elif (cached := self._cache(reply, con)) is None:
            con.say("cache_failed")
        self._release_spmc_rx(spmc, con)
        return (True, cached) if cached is not None else (False, ())

    @staticmethod
    def _cache(reply: FfaReply, con: _Console) -> tuple[bytes, ...] | None:
        count, fpi_size = reply.w2, reply.w3
        if not DescriptorLayout.V1_1 <= fpi_size < PAGE_SIZE or count > PAGE_SIZE // fpi_size:
            return None
        entries = [
            reply.rx[n * fpi_size : (n + 1) * fpi_size].ljust(fpi_size, b"\0") for n in range(count)
        ]
        kept = []
        for entry in entries:
            sp_id = int.from_bytes(entry[:2], "little")
            if is_secure_id(sp_id):
                kept.append(entry)
                continue
            if not any(line.key == "id_convention" for line in con.lines):
                con.say("id_convention")  # printk_once
            con.say("sp_unusable", id=sp_id)
        return tuple(kept)

    @staticmethod
    def _release_spmc_rx(spmc: SpmcConfig, con: _Console) -> None:
        # Xen calls FFA_RX_RELEASE whatever FFA_FEATURES said; the test SPMC answers it too.
        reply = spmc_rx_release()
        if not reply.ok:
            con.say("rx_release_failed", error=signed_error(reply.w2))

    def _cache_after_failure(self) -> tuple[bytes, ...]:
        return ()

    def _guest(
        self, spmc: SpmcConfig, boot: XenBoot, options: XenOptions, domid: int
    ) -> FfaEndpoint:
        # Deliberately not given ``spmc``: after boot 4.22 never asks it for partition info
        # again. With RX_ACQUIRE (reported, or assumed by the SEND2 workaround) it registers a
        # guest's RX/TX buffers with the SPMC first (ffa_rxtx.c ffa_handle_rxtx_map: FFA_RXTX_MAP
        # with x1..x3 = 0 and a descriptor in Xen's TX page), which already holds Xen's own.
        forwarded = spmc_rxtx_map(True, 0) if F.RX_ACQUIRE in boot.firmware_abis else None
        return CachedGuest(
            boot.cached_sps or (),
            boot.ffa_enabled,
            GuestRx(),
            domid + 1,
            options.dom0_vcpus,
            forwarded,
        )


class Xen420(PreCacheMediator):
    name = "xen-4.20"
    mediator_version = V1_1
    has_tee_option = False
    has_vm_to_vm = False
    max_sp_key = "impossible_sp_count"
    max_sp = 0xFFFF
    guest_type = LiveGuest420


class Xen421(PreCacheMediator):
    name = "xen-4.21"
    mediator_version = V1_1
    has_tee_option = True
    has_vm_to_vm = True
    max_sp_key = "too_many_sps"
    max_sp = MAX_NUM_SP
    guest_type = LiveGuest


class Xen422(CachingMediator):
    name = "xen-4.22"
    mediator_version = V1_2
    has_tee_option = True
    has_vm_to_vm = True


PROFILES: dict[str, type[XenProfile]] = {p.name: p for p in (Xen420, Xen421, Xen422, NoHypervisor)}


def get_profile(name: str) -> XenProfile:
    try:
        return PROFILES[name]()
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ConfigError(f"unknown Xen profile {name!r} (known: {known})") from None


@dataclass(frozen=True)
class Expectation:
    profile: str
    boot: XenBoot
    transcript: ProbeTranscript


def expect(
    profile: str, spmc: SpmcConfig, plan: ProbePlan, options: XenOptions = XenOptions()
) -> Expectation:
    """What a board booting ``spmc`` under ``profile`` should print and what the probe reports."""
    xen = get_profile(profile)
    boot = xen.boot(spmc, options)
    return Expectation(profile, boot, run_plan(plan, xen.guest(spmc, boot, options)))
