"""Xen's FF-A-related console messages, defined once: the oracle renders them, the log parser
matches them. Templates use ``{name:spec}`` fields; ``render`` formats and ``match`` parses back.
Texts are exact (xen/arch/arm/tee/*.c, see shared/reference/xen-ffa-partinfo.md §1-2, §5)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from string import Formatter
from typing import Any


class Level(StrEnum):
    """printk level. Release builds print ERR/WARNING/INFO and hide DEBUG (Xen >= 4.18)."""

    ERR = "err"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"


# Field spec -> (regex, converter, Python format spec). Specs mirror Xen's printk formats.
_FIELD_TYPES: dict[str, tuple[str, Any, str]] = {
    "d": (r"-?\d+", int, "d"),
    "u": (r"\d+", int, "d"),
    "04x": (r"[0-9a-fA-F]{4,}", lambda s: int(s, 16), "04x"),
    "#x": (r"0x[0-9a-fA-F]+", lambda s: int(s, 16), "#x"),
    "s": (r"\S+", str, ""),
    "ver": (r"\d+\.\d+", str, ""),
    "rest": (r".*", str, ""),
}


@dataclass(frozen=True)
class Message:
    key: str
    template: str
    level: Level
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    converters: dict[str, Any] = field(init=False, repr=False, compare=False)
    _format: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts: list[str] = []
        fmt: list[str] = []
        converters: dict[str, Any] = {}
        for literal, name, spec, _ in Formatter().parse(self.template):
            parts.append(re.escape(literal))
            fmt.append(literal.replace("{", "{{").replace("}", "}}"))
            if name is None:
                continue
            pattern, convert, py_spec = _FIELD_TYPES[spec or "s"]
            parts.append(f"(?P<{name}>{pattern})")
            fmt.append(f"{{{name}:{py_spec}}}" if py_spec else f"{{{name}}}")
            converters[name] = convert
        object.__setattr__(self, "regex", re.compile("".join(parts) + r"\s*$"))
        object.__setattr__(self, "converters", converters)
        object.__setattr__(self, "_format", "".join(fmt))

    def render(self, **values: Any) -> str:
        return self._format.format(**values)

    def match(self, text: str) -> dict[str, Any] | None:
        m = self.regex.match(text)
        if not m:
            return None
        return {k: self.converters[k](v) for k, v in m.groupdict().items()}


def _m(key: str, template: str, level: Level) -> Message:
    return Message(key, template, level)


MESSAGES: tuple[Message, ...] = (
    _m("tee_selected", "TEE Mediator {name:s} selected from command line", Level.INFO),
    _m("tee_probe_failed", "TEE mediator {name:s} from command line probe failed", Level.ERR),
    _m("tee_not_supported", "TEE Mediator {name:s} from command line not supported", Level.ERR),
    _m("tee_using", "Using TEE mediator for {name:s}", Level.INFO),
    _m("mediator_version", "ARM FF-A Mediator version {version:ver}", Level.INFO),
    _m(
        "smccc_unsupported",
        "ffa: unsupported SMCCC version {found:#x} (need at least {needed:#x})",
        Level.ERR,
    ),
    _m("version_failed", "ffa: Cannot retrieve the FFA version", Level.ERR),
    # 4.20/4.21 use gprintk, which puts the current vCPU (e.g. "d[IDLE]v0") before the text.
    _m("version_failed_vcpu", "{vcpu:s} Cannot retrieve the FFA version", Level.ERR),
    _m("incompatible_version", "ffa: Incompatible firmware version {version:ver}", Level.ERR),
    _m("firmware_version", "ARM FF-A Firmware version {version:ver}", Level.INFO),
    _m("abi_unsupported", "ARM FF-A Firmware does not support {abi:s}", Level.WARNING),
    _m(
        "send2_without_acquire",
        "ARM FF-A Firmware reports FFA_MSG_SEND2 without FFA_RX_ACQUIRE",
        Level.WARNING,
    ),
    _m("rx_acquire_workaround", "ffa: assuming RX_ACQUIRE support (workaround)", Level.WARNING),
    _m("rxtx_init_failed", "ffa: Error during RXTX buffer init", Level.ERR),
    _m("sp_list_failed", "ffa: Failed to get list of SPs: {error:d}", Level.ERR),
    _m("too_many_sps", "ffa: More SPs than the maximum supported: {count:u} - {max:u}", Level.ERR),
    _m("impossible_sp_count", "ffa: Impossible number of SPs: {count:u}", Level.ERR),
    _m("partinfo_size_invalid", "ffa: partition info size invalid: {size:u}", Level.ERR),
    _m("subscr_alloc_failed", "ffa: Failed to allocate subscription lists", Level.ERR),
    _m("cache_failed", "ffa: Failed to cache SP list", Level.ERR),
    _m("id_convention", "ffa: Firmware is not using bit 15 convention for IDs !!", Level.ERR),
    _m("sp_unusable", "ffa: Secure partition with id 0x{id:04x} cannot be used", Level.ERR),
    _m("rx_release_failed", "ffa: Error releasing SPMC RX buffer: {error:d}", Level.WARNING),
    _m("request_irq_failed", "ffa: request_irq irq {irq:u} failed: error {error:d}", Level.ERR),
    _m("no_firmware", "ARM FF-A No firmware support", Level.WARNING),
    _m("vm_to_vm_insecure", "ffa: VM to VM is enabled, system is insecure !!", Level.ERR),
    _m("vm_to_vm_only", "ARM FF-A only available between VMs", Level.INFO),
    _m(
        "vm_created_failed",
        "ffa: Failed to report creation of vm_id {vm_id:u} to  {sp_id:u}: res {res:d}",
        Level.ERR,
    ),
    _m(
        "vm_destroyed_failed",
        "{domain:s} ffa: Failed to report destruction of vm_id {vm_id:u} to {sp_id:u}: res {res:d}",
        Level.WARNING,
    ),
    _m("cleanup_retry", "{domain:s} ffa: Remaining cleanup, retrying", Level.DEBUG),
    # Xen 4.18/4.19 probe messages.
    _m(
        "mandatory_feature_missing",
        "ffa: mandatory feature id {fid:#x} missing: error {error:d}",
        Level.ERR,
    ),
    _m("incompatible_version_legacy", "ffa: Incompatible version {version:#x} found", Level.ERR),
    _m("version_not_supported_legacy", "ffa: FFA_VERSION returned not supported", Level.ERR),
    _m("rxtx_map_failed_legacy", "ffa: Failed to map rxtx: error {error:d}", Level.ERR),
    # Not FF-A, but what a boot check needs to know.
    _m("xen_version", "Xen version {version:s} {rest:rest}", Level.INFO),
    _m("dom0_create_failed", "Error creating domain 0 (rc = {rc:d})", Level.ERR),
    _m("panic", "Panic on CPU {cpu:u}:", Level.ERR),
)

BY_KEY: dict[str, Message] = {m.key: m for m in MESSAGES}

# Messages about FF-A (what a check compares); the rest only mark boot progress or failure.
FFA_KEYS: frozenset[str] = frozenset(BY_KEY) - {"xen_version", "dom0_create_failed", "panic"}


def message(key: str) -> Message:
    return BY_KEY[key]


def identify(text: str) -> tuple[Message, dict[str, Any]] | None:
    """The catalogue message ``text`` (one Xen console line, prefix removed) is, with its fields."""
    for msg in MESSAGES:
        values = msg.match(text)
        if values is not None:
            return msg, values
    return None
