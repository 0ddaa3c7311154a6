"""Base vs head, scenario by scenario: what Xen printed about FF-A and what the guest was answered,
and the exit code of a review.

A scenario either side could not observe (its boot failed after its retries, the probe's
evidence was damaged, it was not run) is *not compared*: never reported as the same."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hil.diff.behaviour import Behaviour
from hil.errors import ExitCode

SCHEMA = 1


class Status(StrEnum):
    SAME = "same"
    DIFFERS = "differs"
    NOT_COMPARED = "not compared"


@dataclass(frozen=True)
class Side:
    """One side's outcome for one scenario: its verdict against its own expectation (a profile
    or a recording) and, when the boot could be read, what it showed."""

    verdict: str  # pass / fail / infra_error / not_run / recorded
    message: str
    behaviour: Behaviour | None  # None: nothing to compare (not booted, evidence damaged)
    expected: str = ""  # the profile or recording the verdict is against
    captures: str = ""  # the case's directory, relative to the review's run directory

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "expected": self.expected,
            "message": self.message,
            "captures": self.captures,
        }


@dataclass(frozen=True)
class LineDiff:
    """Two line lists aligned: ``rows`` are difflib opcodes with their lines, for a side-by-side;
    ``removed``/``added`` are the base-only and head-only lines."""

    rows: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]

    @classmethod
    def of(cls, base: Sequence[str], head: Sequence[str]) -> LineDiff:
        matcher = difflib.SequenceMatcher(None, list(base), list(head), autojunk=False)
        return cls(
            tuple(
                (tag, tuple(base[i1:i2]), tuple(head[j1:j2]))
                for tag, i1, i2, j1, j2 in matcher.get_opcodes()
            )
        )

    @property
    def removed(self) -> list[str]:
        return [line for tag, old, _ in self.rows if tag != "equal" for line in old]

    @property
    def added(self) -> list[str]:
        return [line for tag, _, new in self.rows if tag != "equal" for line in new]

    @property
    def differs(self) -> bool:
        return any(tag != "equal" for tag, _, _ in self.rows)

    def changes(self) -> Iterator[str]:
        """The differing lines in order, ``-`` base, ``+`` head, as a diff reads."""
        for tag, old, new in self.rows:
            if tag != "equal":
                yield from (f"-{line}" for line in old)
                yield from (f"+{line}" for line in new)

    def to_json(self) -> dict[str, list[str]]:
        return {"removed": self.removed, "added": self.added}


@dataclass(frozen=True)
class ScenarioDiff:
    name: str
    base: Side
    head: Side
    xen: LineDiff | None = None  # None: not compared
    guest: LineDiff | None = None

    @classmethod
    def of(cls, name: str, base: Side, head: Side) -> ScenarioDiff:
        if base.behaviour is None or head.behaviour is None:
            return cls(name, base, head)
        return cls(
            name,
            base,
            head,
            LineDiff.of(base.behaviour.xen, head.behaviour.xen),
            LineDiff.of(base.behaviour.guest, head.behaviour.guest),
        )

    @property
    def status(self) -> Status:
        if self.xen is None or self.guest is None:
            return Status.NOT_COMPARED
        return Status.DIFFERS if self.xen.differs or self.guest.differs else Status.SAME

    def why_not_compared(self) -> str:
        """Which side could not be observed, and its own words."""
        missing = [(n, s) for n, s in (("base", self.base), ("head", self.head)) if not s.behaviour]
        return "; ".join(f"{n}: {s.verdict}: {s.message}" for n, s in missing)

    def changes(self) -> list[str]:
        """Xen's differing lines, then the guest's."""
        return [
            *(self.xen.changes() if self.xen else ()),
            *(self.guest.changes() if self.guest else ()),
        ]

    def to_json(self) -> dict[str, Any]:
        empty = {"removed": [], "added": []}
        return {
            "name": self.name,
            "status": self.status.value,
            "differs": self.status is Status.DIFFERS,
            "compared": self.status is not Status.NOT_COMPARED,
            "xen": self.xen.to_json() if self.xen else empty,
            "guest": self.guest.to_json() if self.guest else empty,
            "verdicts": {"base": self.base.to_json(), "head": self.head.to_json()},
        }


@dataclass(frozen=True)
class Review:
    """A whole review: each side's provenance and every scenario's comparison."""

    base: Mapping[str, Any]
    head: Mapping[str, Any]
    scenarios: Sequence[ScenarioDiff]
    run_dir: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def count(self, status: Status) -> int:
        return sum(1 for s in self.scenarios if s.status is status)

    @property
    def exit_code(self) -> ExitCode:
        """1 when any scenario differs (a real finding, whatever else went wrong, as in hil run),
        else 3 when any was not compared, else 0."""
        if self.count(Status.DIFFERS):
            return ExitCode.CHECK_FAILED
        if self.count(Status.NOT_COMPARED):
            return ExitCode.INFRA
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "base": dict(self.base),
            "head": dict(self.head),
            "scenarios": [s.to_json() for s in self.scenarios],
            "summary": {status.value: self.count(status) for status in Status},
            "exit_code": int(self.exit_code),
            "run_dir": self.run_dir,
            **self.extra,
        }
