"""What Linux's FF-A driver registers, predicted from the scenario and the Xen profile, and the
check that compares it with what the guest printed (:mod:`hil.guest.linux_log`).

The driver is replayed against the same guest model the probe's expectations use
(:meth:`hil.xen.oracle.XenProfile.guest`), in the order ``drivers/firmware/arm_ffa/driver.c``
makes its calls at boot. The kernel is Debian's 7.3.4+deb13-cloud-arm64 (7.3.4-1~bpo13+1,
``ffa-core`` + ``ffa-module``); observations below are from it unless marked 6.12 (the kernel
hil built from ``linux-source-6.12`` before Debian shipped the driver; same results except where
said):

- ``FFA_VERSION(1.2)``: an answer of NOT_SUPPORTED (Xen with FF-A off answers SMCCC "unknown
  function", the same -1) ends the driver: ``FFA_VERSION returned not supported``, no devices,
  and not even its ``Driver version`` line (6.12: count-64 on 4.22.0).
  Otherwise it logs ``Driver version 1.2`` and ``Firmware version X.Y found`` and runs at
  min(1.2, X.Y): v1.2 under Xen 4.22 (which answers 1.2), v1.1 under 4.21 (which answers 1.1).
  6.12's driver spoke v1.1 at most.
- ``FFA_ID_GET`` (dom0's id under Xen: domid + 1 = 0x0001; 0x0000 without Xen), ``RXTX_MAP``:
  refused, the driver stops with ``failed to register FFA RxTx buffers`` and registers nothing
  (6.12: send2-without-acquire on 4.22.0, whose SPMC refuses Xen's forwarded map).
- The partition list for the nil UUID, twice (count, then entries). At v1.2 the driver uses
  ``FFA_PARTITION_INFO_GET_REGS`` when ``FFA_FEATURES`` says it exists (Xen 4.22 does for a v1.2
  guest); Xen 4.22 builds that answer like its ``PARTITION_INFO_GET`` one (the cached SPs, then
  the caller's own entry, ``ffa_get_vm_partinfo``), so the oracle replays ``PARTITION_INFO_GET``
  (count-only flag at v1.1+). Any FFA_ERROR or a count of 0 means ``No partitions found`` and no
  devices at all (6.12: ``error 0`` for zero-sps on 4.22.0, ``error -95``, NOT_SUPPORTED, for
  fpi-size-4096 and page-overflow-41 on 4.21.2). Each entry becomes a device with the id and
  UUID as given: the driver does not check bit 15 (Xen already dropped ids without it; 0x8000
  and 0xffff register), keeps nil UUIDs, and registers a duplicated id twice (6.12:
  bit15-boundary, nil-uuid-entries, duplicate-ids on 4.22.0).
- Then a device for the host itself (its FFA_ID_GET id and the nil UUID,
  ``ffa_setup_host_partition``) unless the list already holds that id: under 4.22 at v1.2 Xen's
  own entry for dom0 is that device; under 4.21 (v1.1) the driver adds it. Either way one
  0x0001 device (observed: all-secure, one-non-secure, several-non-secure on 4.21.2 and 4.22.0).
"""

from __future__ import annotations

import difflib

from hil.ffa.abi import SMCCC_UNKNOWN_FUNCTION, V1_1, V1_2, FfaVersion
from hil.ffa.partition import DescriptorLayout, PartitionInfo
from hil.ffa.spmc import COUNT_FLAG
from hil.ffa.uuid import NIL_UUID
from hil.guest.linux_log import Device, LinuxView
from hil.scenario import Scenario
from hil.xen.oracle import XenOptions, get_profile

DRIVER_VERSION = V1_2  # FFA_DRIVER_VERSION in Linux 7.3 (6.12: 1.1)
NOT_SUPPORTED_WORDS = (SMCCC_UNKNOWN_FUNCTION, 0xFFFFFFFFFFFFFFFF)


def host_id(profile: str, domid: int = 0) -> int:
    """FFA_ID_GET as the driver gets it: Xen gives a guest domid + 1, the SPMD gives 0."""
    return 0 if profile == "none" else domid + 1


def expect_linux(scenario: Scenario, profile: str, options: XenOptions | None = None) -> LinuxView:
    """The view Linux 7.3's FF-A driver reports for ``scenario`` booted under ``profile``."""
    options = options or XenOptions()
    spmc = scenario.spmc_config()
    xen = get_profile(profile)
    guest = xen.guest(spmc, xen.boot(spmc, options), options)
    word = guest.version(DRIVER_VERSION)
    if word in NOT_SUPPORTED_WORDS:
        return LinuxView(None, None, True, ())  # it gives up before logging its own version
    firmware = FfaVersion.from_word(word)
    negotiated = min(firmware, DRIVER_VERSION)
    if not guest.rxtx_map().ok:
        return LinuxView(DRIVER_VERSION, firmware, False, ())
    counted = guest.partition_info_get(NIL_UUID, COUNT_FLAG if negotiated >= V1_1 else 0)
    if negotiated < V1_1:
        guest.rx_release()
    if not counted.ok or counted.w2 == 0:
        return LinuxView(DRIVER_VERSION, firmware, False, ())
    listed = guest.partition_info_get(NIL_UUID, 0)
    guest.rx_release()
    if not listed.ok or listed.w2 == 0:
        return LinuxView(DRIVER_VERSION, firmware, False, ())
    devices = [Device(p.id, p.uuid) for p in _entries(listed.rx, listed.w2, negotiated)]
    host = host_id(profile)
    if all(d.partition_id != host for d in devices):
        devices.append(Device(host, NIL_UUID))
    return LinuxView(DRIVER_VERSION, firmware, False, tuple(devices))


def _entries(rx: bytes, count: int, version: FfaVersion) -> list[PartitionInfo]:
    """The driver reads ``count`` entries of its own struct size (24 B at v1.1; 8 B, and no
    UUID, at v1.0) from the RX buffer."""
    layout = DescriptorLayout.V1_1 if version >= V1_1 else DescriptorLayout.V1_0
    data = rx[: count * layout.value].ljust(count * layout.value, b"\0")
    size = layout.value
    return [PartitionInfo.unpack(data[n : n + size], layout) for n in range(0, len(data), size)]


def check_linux(expected: LinuxView, observed: LinuxView) -> list[str]:
    """The differences as a unified diff of the rendered views (empty: they agree)."""
    if expected == observed:
        return []
    diff = difflib.unified_diff(
        expected.render(), observed.render(), "expected (oracle)", "observed (Linux)", lineterm=""
    )
    return list(diff)
