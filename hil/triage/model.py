"""What one boot of a console log says, and what a whole log says: the facts triage keeps per
boot (versions, FF-A up or down, dropped SPs, violations, the Xen profile they fit) and the
log's verdict. Fed one classified Xen line at a time by ``hil.triage.scan``; finished boots are
handed to a sink as soon as the next boot starts, so a log of any length needs one boot of memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass, field
from enum import StrEnum
from json.encoder import encode_basestring_ascii  # what json.dumps writes a str as
from typing import Any

from hil.xen.log import MessageKey

K = MessageKey

# Init failures and runtime refusals a firmware must not cause; each is reported with its line.
# Every wording of every Xen with the FF-A mediator counts, each kind named after its catalogue
# message (hil.xen.messages): 4.18/4.19's ``*_legacy`` and ``mandatory_feature_missing``,
# 4.20/4.21's gprintk ``version_failed_vcpu``, ``impossible_sp_count``,
# ``partinfo_size_invalid`` and ``subscr_alloc_failed``, 4.21+'s ``too_many_sps``, 4.22+'s
# ``cache_failed`` (wordings checked against ffa*.c of 4.20.4, 4.21.2, 4.22.0 and master
# c447b7308b in ../shared/xen; 4.18/4.19 from reference §5).
FFA_FAILURES: frozenset[MessageKey] = frozenset(
    {
        K.SMCCC_UNSUPPORTED,
        K.VERSION_FAILED,
        K.VERSION_FAILED_VCPU,
        K.INCOMPATIBLE_VERSION,
        K.RXTX_INIT_FAILED,
        K.SP_LIST_FAILED,
        K.TOO_MANY_SPS,
        K.IMPOSSIBLE_SP_COUNT,
        K.PARTINFO_SIZE_INVALID,
        K.SUBSCR_ALLOC_FAILED,
        K.CACHE_FAILED,
        K.SP_UNUSABLE,
        K.VM_CREATED_FAILED,
        K.MANDATORY_FEATURE_MISSING,
        K.INCOMPATIBLE_VERSION_LEGACY,
        K.VERSION_NOT_SUPPORTED_LEGACY,
        K.RXTX_MAP_FAILED_LEGACY,
    }
)
# Messages after which the mediator is not serving the firmware's SPs.
_FFA_DOWN: frozenset[MessageKey] = FFA_FAILURES - {K.SP_UNUSABLE, K.VM_CREATED_FAILED} | {
    K.NO_FIRMWARE,
    K.TEE_PROBE_FAILED,
}
_NOT_FFA: frozenset[MessageKey] = frozenset({K.XEN_VERSION, K.DOM0_CREATE_FAILED, K.PANIC})
_TEE_NAMED: frozenset[MessageKey] = frozenset(
    {K.TEE_SELECTED, K.TEE_PROBE_FAILED, K.TEE_NOT_SUPPORTED, K.TEE_USING}
)
_CRASHES: frozenset[MessageKey] = frozenset({K.PANIC, K.DOM0_CREATE_FAILED})
_XEN_VERSION, _MEDIATOR, _FIRMWARE, _UP, _HEADER, _UNUSABLE, _CACHE, _GAVE_UP = range(8)
_ROLES: dict[MessageKey, int] = {
    K.XEN_VERSION: _XEN_VERSION,
    K.MEDIATOR_VERSION: _MEDIATOR,
    K.FIRMWARE_VERSION: _FIRMWARE,
    K.TEE_USING: _UP,
    K.ID_CONVENTION: _HEADER,
    K.SP_UNUSABLE: _UNUSABLE,
    K.CACHE_FAILED: _CACHE,
    K.NO_FIRMWARE: _GAVE_UP,
}

# Violation kinds that are not a catalogue message: Xen stopping. ``dom0_create_failed`` is
# panic("Error creating domain 0 (rc = %ld)") and its siblings in domain_build.c (4.20-master).
XEN_PANIC = "xen_panic"
XEN_BUG = "xen_bug"
XEN_ASSERT = "xen_assert"
DOM0_CREATE_FAILED = "dom0_create_failed"
# A line of Xen's that reads as the FF-A mediator's own (``ffa: ``, ``dN: ffa: ``, ``ARM FF-A ``)
# but is no message Xen prints: damaged on the console, cut by a mail wrap, or a message this hil
# does not know. It may have been the violation, so a boot holding one is never called clean; it
# is no evidence either way, so it is not blamed on the firmware (hil.evidence's rule for hil run).
UNREADABLE = "unreadable_ffa_line"
NO_FIRMWARE = "no_firmware"  # FF-A gave up with no failure line of its own before it
_DOM0_REASONS = re.compile(
    r"Error creating (?:domain 0\b|d0v0|domain 0 vcpu0)|Could not set up (?:DOM0|d0) guest OS"
    r"|Failed to allocate requested dom0 memory|Failed map pages to DOM0"
)


def crash_kind(reason: str) -> str:
    """The violation kind of a Xen crash, from its reason (the panic text or a BUG/ASSERT line)."""
    if reason.startswith("Xen BUG at"):
        return XEN_BUG
    if reason.startswith("Assertion '"):
        return XEN_ASSERT
    if _DOM0_REASONS.match(reason):
        return DOM0_CREATE_FAILED
    return XEN_PANIC


# Which Xen releases print each message or show each behaviour (from each release's ffa*.c;
# reference §1, §5): evidence that contradicts the banner's version is reported, not hidden.
_ALL = frozenset({"4.18", "4.19", "4.20", "4.21", "4.22+"})
_MESSAGE_RELEASES: dict[MessageKey, frozenset[str]] = {
    K.VERSION_FAILED: frozenset({"4.22+"}),
    K.VERSION_FAILED_VCPU: frozenset({"4.20", "4.21"}),
    K.INCOMPATIBLE_VERSION: frozenset({"4.20", "4.21", "4.22+"}),
    K.SEND2_WITHOUT_ACQUIRE: frozenset({"4.22+"}),
    K.RX_ACQUIRE_WORKAROUND: frozenset({"4.22+"}),
    K.TOO_MANY_SPS: frozenset({"4.21", "4.22+"}),
    K.IMPOSSIBLE_SP_COUNT: frozenset({"4.19", "4.20"}),
    K.PARTINFO_SIZE_INVALID: frozenset({"4.19", "4.20", "4.21"}),
    K.SUBSCR_ALLOC_FAILED: frozenset({"4.19", "4.20", "4.21"}),
    K.CACHE_FAILED: frozenset({"4.22+"}),
    K.RX_RELEASE_FAILED: frozenset({"4.22+"}),
    K.ID_CONVENTION: frozenset({"4.20", "4.21", "4.22+"}),
    K.SP_UNUSABLE: frozenset({"4.20", "4.21", "4.22+"}),
    K.TEE_SELECTED: frozenset({"4.21", "4.22+"}),
    K.VM_TO_VM_INSECURE: frozenset({"4.21", "4.22+"}),
    K.VM_TO_VM_ONLY: frozenset({"4.21", "4.22+"}),
    K.MANDATORY_FEATURE_MISSING: frozenset({"4.18", "4.19"}),
    K.INCOMPATIBLE_VERSION_LEGACY: frozenset({"4.18", "4.19"}),
    K.VERSION_NOT_SUPPORTED_LEGACY: frozenset({"4.18", "4.19"}),
    K.RXTX_MAP_FAILED_LEGACY: frozenset({"4.18", "4.19"}),
}
_MEDIATOR_RELEASES = {
    "1.1": frozenset({"4.18", "4.19", "4.20", "4.21"}),
    "1.2": frozenset({"4.22+"}),
}
_PRE_CACHE = frozenset({"4.20", "4.21"})  # bit-15 header printed once per dropped SP
_CACHED = frozenset({"4.22+"})  # header printed once per boot
_PROFILE_OF = {"4.20": "xen-4.20", "4.21": "xen-4.21", "4.22+": "xen-4.22"}
_BANNER = re.compile(r"(\d+)\.(\d+)")


def release_of(version: str) -> str | None:
    """The release family of a Xen banner version: "4.21.2" -> "4.21", "4.23-unstable" ->
    "4.22+" (later releases behave as 4.22 until a profile says otherwise), None before 4.18."""
    match = _BANNER.match(version)
    if match is None:
        return None
    major, minor = int(match[1]), int(match[2])
    if (major, minor) >= (4, 22):
        return "4.22+"
    return f"{major}.{minor}" if (major, minor) >= (4, 18) else None


def _releases_text(releases: frozenset[str]) -> str:
    return ", ".join(sorted(releases)) or "no release"


@dataclass(frozen=True)
class Violation:
    kind: str  # a catalogue key (sp_unusable, ...) or a crash/no_firmware kind above
    line: int
    text: str
    fields: Mapping[str, int | str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        extra = {("sp_id" if k == "id" else k): v for k, v in self.fields.items()}
        return {"kind": self.kind, "line": self.line, **extra, "text": self.text}


@dataclass
class Boot:
    """One boot's story, from its start (TF-A's banner, Xen's, or the log's first line)."""

    first_line: int
    xen_version: str | None = None
    mediator_version: str | None = None
    firmware_version: str | None = None
    ffa_lines: int = 0
    ffa_up: bool = False
    ffa_down: bool = False
    crashed: bool = False
    header_count: int = 0
    unusable_count: int = 0
    dropped_sp_ids: list[int] = field(default_factory=list)
    cache_failed: bool = False
    releases: frozenset[str] = _ALL  # the Xen releases every message so far fits
    violations: list[Violation] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)  # why ``releases`` narrowed

    @property
    def started(self) -> bool:
        """Whether Xen has said anything in this boot (then a new banner starts a new boot)."""
        return self.xen_version is not None or self.ffa_lines > 0 or self.crashed

    @property
    def fresh(self) -> bool:
        """Whether nothing has been read into this boot (but where it starts): every change but
        a violation starts it, so a run of Xen's lines does the same to every fresh boot (what
        ``no_firmware`` adds depends on the violations before it)."""
        return not self.violations and not self.started

    def add(
        self, key: MessageKey, values: Mapping[str, int | str], line: int, text: Callable[[], str]
    ) -> None:
        """Account Xen's catalogue message ``key`` at ``line``; ``text()`` gives the line."""
        if key in _TEE_NAMED and str(values["name"]).lower() not in ("ffa", "ff-a"):
            return  # another TEE mediator (OP-TEE)
        if key in _CRASHES:
            return  # crashes arrive through crash(), with their reason
        if key not in _NOT_FFA:
            self.ffa_lines += 1
        if key in _MESSAGE_RELEASES:
            self._narrow(_MESSAGE_RELEASES[key], key)
        role = _ROLES.get(key)  # a dict, not a match on enum members: this runs per line
        if role == _XEN_VERSION:
            self.xen_version = str(values["version"])
        elif role == _MEDIATOR:
            self.mediator_version = str(values["version"])
            self._narrow(_MEDIATOR_RELEASES.get(self.mediator_version), "mediator version")
        elif role == _FIRMWARE:
            self.firmware_version = str(values["version"])
        elif role == _UP:
            self.ffa_up = True
        elif role == _HEADER:
            self.header_count += 1
            # Xen prints the header only when it drops an SP, right before that SP's own line
            # (4.20/4.21: one printk; 4.22+: the same loop pass). Until that line comes, the
            # header is the violation: when it is lost or damaged, the boot is not clean.
            self.violations.append(Violation(key, line, text(), dict(values)))
        elif role == _UNUSABLE:
            self.unusable_count += 1
            if self.violations and self.violations[-1].kind == K.ID_CONVENTION:
                self.violations.pop()  # the SP's own line says it better
            if values["id"] not in self.dropped_sp_ids:
                self.dropped_sp_ids.append(int(values["id"]))
        elif role == _CACHE:
            self.cache_failed = True
        elif role == _GAVE_UP and not any(v.kind != K.SP_UNUSABLE for v in self.violations):
            # FF-A gave up and no line before said why (4.20+ give up silently when the
            # firmware lacks PARTITION_INFO_GET or DIRECT_REQ_32): this line is the evidence.
            self.violations.append(Violation(NO_FIRMWARE, line, text()))
        if key in _FFA_DOWN:
            self.ffa_down = True
        if key in FFA_FAILURES:
            self.violations.append(Violation(key, line, text(), dict(values)))

    def unreadable(self, line: int, text: str) -> None:
        """An FF-A line of Xen's at ``line`` that is no message it prints (see UNREADABLE)."""
        self.violations.append(Violation(UNREADABLE, line, text))

    @property
    def only_unreadable(self) -> bool:
        """Whether this boot's only findings are unreadable FF-A lines: no evidence, not a
        violation."""
        return bool(self.violations) and all(v.kind == UNREADABLE for v in self.violations)

    def crash(self, kind: str, line: int, text: str) -> None:
        """Xen stopped (panic, BUG, ASSERT, dom0 not created): reported once per boot, by the
        first line that says so (a BUG's own line comes before its panic repeats it)."""
        if not self.crashed:
            self.crashed = True
            self.violations.append(Violation(kind, line, text))

    def shift(self, lines: int) -> None:
        """Move this boot ``lines`` lines further into the log (read from a part of it)."""
        self.first_line += lines
        self.violations = [
            Violation(v.kind, v.line + lines, v.text, v.fields) for v in self.violations
        ]

    def _narrow(self, releases: frozenset[str] | None, why: str) -> None:
        """Keep only the releases that print what was just seen."""
        if releases is not None and not releases >= self.releases:
            self.releases &= releases
            self.evidence.append(why)

    @property
    def ffa_enabled(self) -> bool | None:
        if not self.ffa_lines:
            return None
        return self.ffa_up and not self.ffa_down

    def _message_releases(self) -> frozenset[str]:
        releases = self.releases
        if self.header_count > 1 and self.header_count == self.unusable_count:
            releases &= _PRE_CACHE
        elif self.header_count == 1 and self.unusable_count > 1:
            releases &= _CACHED
        return releases

    @property
    def profile(self) -> str:
        """The oracle profile (hil.xen.oracle) this boot's Xen behaves as: from its banner when
        the messages fit it, from the messages alone without a banner, ``contradiction`` when
        they do not fit the banner, ``unknown`` without evidence or for Xen before 4.20."""
        if self.profile_conflict is not None:
            return "contradiction"
        banner = release_of(self.xen_version) if self.xen_version else None
        if self.xen_version is not None:
            return _PROFILE_OF.get(banner or "", "unknown")
        profiled = self._message_releases() & _PROFILE_OF.keys()
        if profiled == {"4.20", "4.21"}:
            return "xen-4.21"  # 4.20 and 4.21 behave alike unless 4.20 is named
        if len(profiled) == 1:
            return _PROFILE_OF[next(iter(profiled))]
        return "unknown"

    @property
    def profile_conflict(self) -> str | None:
        """Why the FF-A messages cannot come from the Xen the banner names, or None."""
        if self.xen_version is None:
            return None
        banner = release_of(self.xen_version)
        releases = self._message_releases()
        if banner is None or banner in releases or releases == _ALL:
            return None
        why = self.evidence + (
            ["bit-15 header count"] if releases != self.releases else []  # from the counts
        )
        return (
            f"banner says Xen {self.xen_version}, FF-A messages fit "
            f"{_releases_text(releases)} only ({', '.join(why)})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "first_line": self.first_line,
            "xen_version": self.xen_version,
            "mediator_version": self.mediator_version,
            "firmware_version": self.firmware_version,
            "ffa_enabled": self.ffa_enabled,
            "dropped_sp_ids": list(self.dropped_sp_ids),
            "cache_failed": self.cache_failed,
            "profile": self.profile,
            "profile_conflict": self.profile_conflict,
            "violations": [v.to_json() for v in self.violations],
        }


_SHAPES: dict[tuple[Any, ...], str] = {}  # a boot's JSON between first_line and violations
_VIOLATION_HEADS: dict[tuple[Any, ...], str] = {}  # a violation's JSON up to its text


def boot_json(boot: Boot) -> str:
    """A boot as ``hil triage --json`` writes it, ``json.dumps(boot.to_json())``."""
    template, lines = boot_template(boot)
    return template % lines


def boot_template(boot: Boot) -> tuple[str, tuple[int, ...]]:
    """``boot_json`` with its line numbers left out: a %-format string (its own "%" doubled)
    and the numbers for its "%d"s, so a worker that reads a part of a log can render boots
    before it knows on which line its part starts. Boots of a long log repeat the same
    versions, profile and violation kinds, so those parts are rendered once."""
    texts = [json_text(v.text) for v in boot.violations]
    lines = (boot.first_line, *(v.line for v in boot.violations))
    return fill(boot_parts(boot), texts), lines


def json_text(text: str) -> str:
    """A violation's text as ``boot_template`` puts it in: a JSON string, its "%" doubled."""
    return encode_basestring_ascii(text).replace("%", "%%")


def fill(parts: tuple[str, ...], texts: list[str]) -> str:
    """``parts`` (from ``boot_parts``) with each violation's ``json_text`` between them."""
    if not texts:
        return parts[0]
    out = [parts[0]]
    for text, part in zip(texts, parts[1:], strict=True):
        out += (text, part)
    return "".join(out)


def boot_parts(boot: Boot) -> tuple[str, ...]:
    """What ``boot_template`` writes around its violations' texts: one more part than the boot
    has violations. It depends on the boot's fields and its violations' kinds and fields only,
    not on its line numbers or texts, so boots that read alike share it."""
    shape = (
        boot.xen_version,
        boot.mediator_version,
        boot.firmware_version,
        boot.ffa_lines,
        boot.ffa_up,
        boot.ffa_down,
        tuple(boot.dropped_sp_ids),
        boot.cache_failed,
        boot.header_count,
        boot.unusable_count,
        boot.releases,
        tuple(boot.evidence),
    )
    middle = _SHAPES.get(shape)
    if middle is None:
        whole = boot.to_json()
        del whole["first_line"], whole["violations"]
        middle = json.dumps(whole)[1:-1].replace("%", "%%")
        if len(_SHAPES) > 4096:
            _SHAPES.clear()
        _SHAPES[shape] = middle
    head = f'{{"first_line": %d, {middle}, "violations": ['
    if not boot.violations:
        return (head + "]}",)
    heads = [_violation_head(v) for v in boot.violations]
    return (
        f'{head}{{{heads[0]}, "text": ',
        *(f'}}, {{{h}, "text": ' for h in heads[1:]),
        "}]}",
    )


def _violation_head(violation: Violation) -> str:
    """``json.dumps(violation.to_json())`` up to its text, with "%d" for its line."""
    key = (violation.kind, tuple(violation.fields.items()))
    head = _VIOLATION_HEADS.get(key)
    if head is None:
        whole = violation.to_json()
        del whole["text"]
        head = ", ".join(
            json.dumps(k).replace("%", "%%")
            + (": %d" if k == "line" else ": " + json.dumps(v).replace("%", "%%"))
            for k, v in whole.items()
        )
        if len(_VIOLATION_HEADS) > 4096:
            _VIOLATION_HEADS.clear()
        _VIOLATION_HEADS[key] = head
    return head


@dataclass(frozen=True)
class Tally:
    """Counts over finished boots, so boots written elsewhere still count toward the verdict."""

    boots: int = 0
    violations: int = 0  # boots with a violation
    ffa_boots: int = 0  # boots with an FF-A line
    ffa_up_boots: int = 0  # boots where the mediator came up ("Using TEE mediator for FF-A")
    xen_boots: int = 0  # boots where Xen said anything
    unreadable: int = 0  # boots whose only findings are unreadable FF-A lines

    @classmethod
    def of(cls, boots: list[Boot]) -> Tally:
        return cls(
            len(boots),
            sum(1 for b in boots if b.violations),
            sum(1 for b in boots if b.ffa_lines),
            sum(1 for b in boots if b.ffa_enabled is True),
            sum(1 for b in boots if b.started),
            sum(1 for b in boots if b.only_unreadable),
        )

    def __sub__(self, other: Tally) -> Tally:
        return Tally(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))


class Verdict(StrEnum):
    """What a log says as a whole; the exit code of ``hil triage`` follows from it."""

    CLEAN = "clean"  # no violation, and Xen's FF-A mediator came up in at least one boot
    VIOLATION = "violation"  # some boot shows a violation
    NO_EVIDENCE = "no_evidence"  # nothing to judge: no boot's FF-A init finished


@dataclass
class Triage:
    """A whole log, built boot by boot. ``sink`` receives each boot once it is finished (the
    last one at ``finish``); only counts and the last boot stay in memory."""

    file: str
    sink: Callable[[Boot], None] | None = None
    # Receives boots rendered elsewhere (by boot_json, joined with ", ") and how many they are.
    rendered: Callable[[str, int], None] | None = None
    # Receives boots the scan rendered itself (``replayed``) as a ``boot_template`` string, its
    # line numbers and how many boots; without it every boot reaches ``sink`` as a Boot.
    templated: Callable[[str, list[int], int], None] | None = None
    current: Boot = field(default_factory=lambda: Boot(first_line=1))
    boots: int = 0
    violations: int = 0
    ffa_boots: int = 0  # boots with an FF-A line
    ffa_up_boots: int = 0  # boots where the mediator came up ("Using TEE mediator for FF-A")
    xen_boots: int = 0  # boots where Xen said anything
    banners: int = 0  # TF-A banners seen
    last: Boot | None = None
    no_evidence_reason: str = ""
    unreadable_boots: int = 0  # boots whose only findings are unreadable FF-A lines

    @property
    def tally(self) -> Tally:
        """The counts over the boots finished so far (``_close`` counts as ``Tally.of``)."""
        return Tally(
            self.boots,
            self.violations,
            self.ffa_boots,
            self.ffa_up_boots,
            self.xen_boots,
            self.unreadable_boots,
        )

    def banner(self, line: int) -> None:
        """TF-A's cold-boot banner at ``line``: a new boot, unless Xen has not spoken yet in the
        current one (a reset before Xen keeps one boot)."""
        self.banners += 1
        if self.current.started:
            self._next(line)

    def message(
        self, key: MessageKey, values: Mapping[str, int | str], line: int, text: Callable[[], str]
    ) -> None:
        boot = self.current
        new_banner = key is K.XEN_VERSION and boot.started
        second_mediator = key is K.MEDIATOR_VERSION and boot.mediator_version is not None
        if new_banner or second_mediator:
            self._next(line)
        self.current.add(key, values, line, text)

    def crash(self, kind: str, line: int, text: str) -> None:
        self.current.crash(kind, line, text)

    def unreadable(self, line: int, text: str) -> None:
        self.current.unreadable(line, text)

    def _next(self, line: int) -> None:
        self._close(self.current)
        self.current = Boot(first_line=line)

    def _close(self, boot: Boot) -> None:
        self.boots += 1
        self.violations += bool(boot.violations)
        self.ffa_boots += boot.ffa_lines > 0
        self.ffa_up_boots += boot.ffa_enabled is True
        self.xen_boots += boot.started
        self.unreadable_boots += boot.only_unreadable
        self.last = boot
        if self.sink is not None:
            self.sink(boot)

    def absorb(self, boots: list[Boot]) -> None:
        """Append the boots of a later part of the log, read on its own from a line that is
        TF-A's banner: its first boot continues the current one if Xen never spoke in it."""
        if not boots:
            return
        if self.current.started:
            self._close(self.current)
        else:
            boots[0].first_line = self.current.first_line
            # What it holds already (FF-A lines of Xen's that are no message) stays its own.
            boots[0].violations[:0] = self.current.violations
        for boot in boots[:-1]:
            self._close(boot)
        self.current = boots[-1]

    def absorb_rendered(self, first: Boot, text: str, tally: Tally, last: Boot) -> None:
        """``absorb`` for a part whose boots between its first and last were rendered."""
        self.absorb([first])
        self._close(self.current)
        self.boots += tally.boots
        self.violations += tally.violations
        self.ffa_boots += tally.ffa_boots
        self.ffa_up_boots += tally.ffa_up_boots
        self.xen_boots += tally.xen_boots
        self.unreadable_boots += tally.unreadable
        assert self.rendered is not None
        self.rendered(text, tally.boots)
        self.current = last

    def replayed(
        self, template: str, lines: list[int], tallies: list[tuple[int, ...]], after: int
    ) -> None:
        """The current boot, which Xen has not started yet, and the boots after it up to the TF-A
        banner at line ``after`` were rendered by the scan (``templated`` takes them, after every
        boot closed before): each ended at a banner, and the one at ``after`` is current now."""
        assert self.templated is not None and self.current.fresh
        self.current = Boot(first_line=after)
        boots, violations, ffa, ffa_up, xen, unreadable = map(sum, zip(*tallies, strict=True))
        self.boots += boots
        self.violations += violations
        self.ffa_boots += ffa
        self.ffa_up_boots += ffa_up
        self.xen_boots += xen
        self.unreadable_boots += unreadable
        self.banners += boots
        self.templated(template, lines, boots)

    def finish(self) -> None:
        self._close(self.current)

    @property
    def verdict(self) -> Verdict:
        if self.violations > self.unreadable_boots:
            return Verdict.VIOLATION
        if self.unreadable_boots or not self.ffa_up_boots:
            return Verdict.NO_EVIDENCE  # also when FF-A init started but the log stops in it
        return Verdict.CLEAN
