"""The Linux guest's console lines: what its ``/init`` (:data:`hil.guest.linux.INIT`) prints.

    HILLINUX version driver=1.1 firmware=1.2      (or: HILLINUX version unsupported driver=1.1)
    HILLINUX kmsg ARM FF-A: Driver version 1.1    (the driver's own kernel log lines, verbatim)
    HILLINUX partition dev=arm-ffa-1 partition_id=0x8001 uuid=...   (one per arm_ffa device)
    HILLINUX end devices=3

A lab's own kernel (``dom0_kernel`` in lab.toml) must print the same lines. Console text is
untrusted: a line that does not parse is reported, never guessed at.
"""

from __future__ import annotations

import re
import uuid as _uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from hil.ffa.abi import FfaVersion
from hil.ffa.errors import FfaFormatError

PREFIX = "HILLINUX "
END = "HILLINUX end"
_FIELD = re.compile(r"([A-Za-z0-9_]+)=(\S*)")
# The init's own line when a driver module would not load (hil.guest.linux.INIT); the driver's
# kernel messages all start "ARM FF-A:".
_INSMOD_FAILED = re.compile(r"insmod \S+ failed$")


class LinuxLogError(ValueError):
    """The guest's lines are missing, incomplete or malformed (the message says which line)."""


@dataclass(frozen=True, order=True)
class Device:
    """One device on the ``arm_ffa`` bus: the partition id and UUID sysfs shows."""

    partition_id: int
    uuid: _uuid.UUID

    def render(self) -> str:
        return f"partition id={self.partition_id:#06x} uuid={self.uuid}"


@dataclass(frozen=True)
class LinuxView:
    """What the FF-A driver reported: its version line and the devices it registered.

    ``firmware`` is None when FFA_VERSION was refused (``unsupported``) or never answered."""

    driver: FfaVersion | None
    firmware: FfaVersion | None
    unsupported: bool
    devices: tuple[Device, ...]
    kmsg: tuple[str, ...] = field(default=(), compare=False)

    def render(self) -> list[str]:
        """Lines for a diff: the version first, then the devices in (id, uuid) order."""
        if self.unsupported:
            head = f"version unsupported driver={self.driver or 'none'}"
        else:
            head = f"version driver={self.driver or 'none'} firmware={self.firmware or 'none'}"
        return [head, *(d.render() for d in sorted(self.devices))]


def _version(value: str, line: str) -> FfaVersion | None:
    if value == "none":
        return None
    try:
        return FfaVersion.parse(value)
    except FfaFormatError:
        raise LinuxLogError(f"bad FF-A version {value!r} in line {line!r}") from None


def _device(fields: dict[str, str], line: str) -> Device:
    try:
        partition_id = int(fields["partition_id"], 16)
        uuid = _uuid.UUID(fields["uuid"])
    except KeyError as exc:
        raise LinuxLogError(f"no {exc.args[0]} in line {line!r}") from None
    except ValueError:
        raise LinuxLogError(f"bad partition_id or uuid in line {line!r}") from None
    if not 0 <= partition_id <= 0xFFFF:
        raise LinuxLogError(f"partition_id out of range in line {line!r}")
    return Device(partition_id, uuid)


def parse_linux(lines: Iterable[str]) -> LinuxView:
    """The view the guest's ``HILLINUX`` lines give; LinuxLogError if they are incomplete."""
    driver = firmware = None
    unsupported = seen_version = False
    devices: list[Device] = []
    kmsg: list[str] = []
    for raw in lines:
        start = raw.find(PREFIX)
        if start < 0:
            continue
        line = raw[start:].rstrip()
        kind, _, rest = line[len(PREFIX) :].partition(" ")
        fields = dict(_FIELD.findall(rest))
        if kind == "version":
            seen_version = True
            unsupported = rest.startswith("unsupported")
            driver = _version(fields.get("driver", "none"), line)
            firmware = None if unsupported else _version(fields.get("firmware", "none"), line)
        elif kind == "kmsg":
            if _INSMOD_FAILED.match(rest):
                # The driver never ran: what the guest reports says nothing of Xen's answers.
                raise LinuxLogError(f"{line!r}: the FF-A driver did not load in the guest")
            kmsg.append(rest)
        elif kind == "partition":
            devices.append(_device(fields, line))
        elif kind == "end":
            if not seen_version:
                raise LinuxLogError("HILLINUX end without a version line before it")
            count = fields.get("devices")
            if count != str(len(devices)):
                raise LinuxLogError(f"{line!r}: {len(devices)} partition lines were printed")
            return LinuxView(driver, firmware, unsupported, tuple(devices), tuple(kmsg))
        else:
            raise LinuxLogError(f"unknown line {line!r}")
    raise LinuxLogError(f"no {END!r} line: the guest did not finish (console cut short?)")
