"""What one run produced: a verdict per board x scenario, with the evidence behind it.

The runner builds these, the reports render them, ``summary.json`` stores them (JSON round trip)
and the exit code of ``hil run`` is derived from them."""

from __future__ import annotations

import json
import math
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from hil.errors import ConfigError, ExitCode

SCHEMA = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# The files a run directory holds beside its board directories (hil.report's FILE_NAMEs): a board
# named like one would have its captures and the report fight over one path. Compared ignoring
# case, for case-insensitive file systems.
RUN_FILES = ("report.html", "junit.xml", "summary.json")


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"  # the firmware or Xen did not do what the scenario expects
    INFRA_ERROR = "infra_error"  # the lab is broken: no boot, console lost, deploy failed
    NOT_RUN = "not_run"  # never attempted, e.g. the run was interrupted first


class StageStatus(StrEnum):
    OK = "ok"
    TIMEOUT = "timeout"
    PANIC = "panic"
    NOT_REACHED = "not_reached"


def validate_name(kind: str, name: str) -> str:
    """``name`` if it is safe as one path component of the run directory (board and scenario
    names become file names), else ConfigError naming ``kind``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"{kind} name {name!r} is not a safe file name: use 1-64 of A-Z a-z 0-9 . _ -, "
            "starting with a letter or digit"
        )
    if name.lower() in RUN_FILES:
        raise ConfigError(f"{kind} name {name!r} is taken by a report file of every run")
    return name


def validate_artifact_path(role: str, path: str) -> str:
    """``path`` if it is relative and stays inside the run directory, else ConfigError."""
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts or "\\" in path:
        raise ConfigError(f"artifact {role!r}: path {path!r} must be relative to the run directory")
    return path


def new_run_id(now: datetime | None = None) -> str:
    """A run id that sorts by start time (UTC, to the second) with a random suffix so two runs
    started in the same second by different hosts still get different directories."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def console_role(console: str, kind: str) -> str:
    """The artifact role of a console capture: ``kind`` is ``raw`` (bytes as read) or ``log``
    (timestamped text lines)."""
    return f"console:{console}:{kind}"


EVENTS_ROLE = "events"
EVIDENCE_ROLE = "evidence"  # where the judged boot is in the captures (hil.evidence.Window)
DIFF_ROLE = "diff"  # a failed check's whole diff, expected vs observed
PROCESS_LOG_ROLE = "process-log"  # what a board hil launched printed itself (not its consoles)


@dataclass(frozen=True)
class StageTiming:
    """One boot stage as seen on one console, in seconds since the case's power-on. ``end_s`` is
    None when the stage never finished (timeout, panic) or never started (not reached)."""

    name: str
    console: str
    start_s: float | None
    end_s: float | None
    status: StageStatus

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", StageStatus(self.status))
        if self.status is StageStatus.NOT_REACHED:
            if self.start_s is not None or self.end_s is not None:
                raise ConfigError(f"stage {self.name!r}: not reached, yet has timings")
            return
        if self.start_s is None or not _finite_non_negative(self.start_s):
            raise ConfigError(f"stage {self.name!r}: start_s must be a number >= 0")
        if self.end_s is not None and not (
            _finite_non_negative(self.end_s) and self.end_s >= self.start_s
        ):
            raise ConfigError(f"stage {self.name!r}: end_s must be >= start_s")
        if self.status is StageStatus.OK and self.end_s is None:
            raise ConfigError(f"stage {self.name!r}: status ok needs end_s")


class BootOutcome(StrEnum):
    BOOTED = "booted"
    PANIC = "panic"
    INFRA_ERROR = "infra_error"  # stalled, console lost, power or deploy failed


@dataclass(frozen=True)
class BootRecord:
    """One boot attempt of a case (each power-cycles the board), in seconds since the case
    started: where a retried case's time went. ``stopped_at`` is the stage it did not finish."""

    number: int
    start_s: float
    end_s: float
    outcome: BootOutcome
    stopped_at: str | None = None
    error: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcome", BootOutcome(self.outcome))
        object.__setattr__(self, "error", " ".join(self.error.splitlines()))
        where = f"boot attempt {self.number!r}"
        if not isinstance(self.number, int) or self.number < 1:
            raise ConfigError(f"{where}: number must be an integer >= 1")
        if not (_finite_non_negative(self.start_s) and _finite_non_negative(self.end_s)):
            raise ConfigError(f"{where}: start_s and end_s must be numbers >= 0")
        if self.end_s < self.start_s:
            raise ConfigError(f"{where}: end_s must be >= start_s")

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "outcome": self.outcome.value,
            "stopped_at": self.stopped_at,
            "error": self.error,
        }


@dataclass(frozen=True)
class CaseResult:
    """One board x scenario. ``diff`` holds unified-diff-like lines (``-`` expected, ``+``
    observed); ``message`` is the one line a user reads first; ``artifacts`` maps a role (see
    ``console_role``, ``EVENTS_ROLE``) to a path relative to the run directory. ``boots`` are
    the boot attempts on the case's clock; ``stages`` are those of the last one, in seconds since
    its power-cycle (``boots[-1].start_s`` into the case)."""

    board: str
    scenario: str
    verdict: Verdict
    started: datetime
    duration_s: float
    message: str = ""
    diff: list[str] = field(default_factory=list)
    attempts: int = 1
    stages: list[StageTiming] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    expected_profile: str | None = None
    board_profile: str | None = None
    boots: list[BootRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        validate_name("board", self.board)
        validate_name("scenario", self.scenario)
        object.__setattr__(self, "verdict", Verdict(self.verdict))
        where = f"{self.board}/{self.scenario}"
        _require_aware(where, "started", self.started)
        if not _finite_non_negative(self.duration_s):
            raise ConfigError(f"{where}: duration_s must be a number >= 0")
        if not isinstance(self.attempts, int) or self.attempts < 0:
            raise ConfigError(f"{where}: attempts must be an integer >= 0")
        # Messages often quote console text; a stray newline must not break one-line output.
        object.__setattr__(self, "message", " ".join(self.message.splitlines()))
        for role, path in self.artifacts.items():
            validate_artifact_path(role, path)

    @property
    def key(self) -> tuple[str, str]:
        return (self.board, self.scenario)

    def console_logs(self) -> dict[str, str]:
        """Console name -> path of its timestamped log, from the artifacts."""
        logs = {}
        for role, path in self.artifacts.items():
            kind, _, rest = role.partition(":")
            console, _, what = rest.rpartition(":")
            if kind == "console" and console and what == "log":
                logs[console] = path
        return logs

    def to_dict(self) -> dict[str, Any]:
        return {
            "board": self.board,
            "scenario": self.scenario,
            "verdict": self.verdict.value,
            "message": self.message,
            "diff": list(self.diff),
            "started": self.started.isoformat(),
            "duration_s": self.duration_s,
            "attempts": self.attempts,
            "stages": [
                {
                    "name": s.name,
                    "console": s.console,
                    "start_s": s.start_s,
                    "end_s": s.end_s,
                    "status": s.status.value,
                }
                for s in self.stages
            ],
            "artifacts": dict(self.artifacts),
            "provenance": dict(self.provenance),
            "expected_profile": self.expected_profile,
            "board_profile": self.board_profile,
            "boots": [b.to_dict() for b in self.boots],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        return cls(
            board=data["board"],
            scenario=data["scenario"],
            verdict=Verdict(data["verdict"]),
            message=data["message"],
            diff=list(data["diff"]),
            started=datetime.fromisoformat(data["started"]),
            duration_s=data["duration_s"],
            attempts=data["attempts"],
            stages=[StageTiming(**s) for s in data["stages"]],
            artifacts=dict(data["artifacts"]),
            provenance=dict(data["provenance"]),
            expected_profile=data["expected_profile"],
            board_profile=data["board_profile"],
            # Absent from summaries written before boot attempts were recorded.
            boots=[BootRecord(**b) for b in data.get("boots", [])],
        )


@dataclass(frozen=True)
class RunResult:
    """All cases of one ``hil run``. ``provenance`` describes the run as a whole (hil version,
    host, lab file digest); ``finished`` is None while the run is still going."""

    run_id: str
    lab_file: str
    started: datetime
    finished: datetime | None
    cases: list[CaseResult]
    interrupted: bool = False
    provenance: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_name("run id", self.run_id)
        _require_aware(self.run_id, "started", self.started)
        if self.finished is not None:
            _require_aware(self.run_id, "finished", self.finished)
        seen: set[tuple[str, str]] = set()
        for case in self.cases:
            if case.key in seen:
                raise ConfigError(
                    f"run {self.run_id}: {case.board}/{case.scenario} is listed twice"
                )
            seen.add(case.key)

    def counts(self) -> dict[Verdict, int]:
        """Cases per verdict, every verdict present (zero included) in a fixed order."""
        found = Counter(c.verdict for c in self.cases)
        return {v: found[v] for v in Verdict}

    @property
    def exit_code(self) -> ExitCode:
        """1 when any check failed: a firmware/Xen regression outranks a broken lab, because the
        failure is real whatever else went wrong. Else 3 when anything could not be judged (an
        infra error, a case not run, an interrupted run): a nightly must not report green for
        work it did not do. Else 0."""
        verdicts = {c.verdict for c in self.cases}
        if Verdict.FAIL in verdicts:
            return ExitCode.CHECK_FAILED
        if self.interrupted or verdicts & {Verdict.INFRA_ERROR, Verdict.NOT_RUN}:
            return ExitCode.INFRA
        return ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "lab_file": self.lab_file,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
            "interrupted": self.interrupted,
            "provenance": dict(self.provenance),
            "cases": [c.to_dict() for c in self.cases],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "run result") -> RunResult:
        """Inverse of ``to_dict``; a malformed document is a ConfigError naming ``source``."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else None
            raise ConfigError(f"{source}: schema {found!r}, this hil reads schema {SCHEMA}")
        try:
            return cls(
                run_id=data["run_id"],
                lab_file=data["lab_file"],
                started=datetime.fromisoformat(data["started"]),
                finished=datetime.fromisoformat(data["finished"]) if data["finished"] else None,
                interrupted=bool(data["interrupted"]),
                provenance=dict(data["provenance"]),
                cases=[CaseResult.from_dict(c) for c in data["cases"]],
            )
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        except KeyError as exc:
            raise ConfigError(f"{source}: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{source}: malformed: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, source: str = "run result") -> RunResult:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}: not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object")
        return cls.from_dict(data, source)


def _finite_non_negative(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _require_aware(where: str, name: str, value: object) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ConfigError(f"{where}: {name} must be a timezone-aware datetime")
