"""One check: a scenario on a board. Deploy its bundle, boot with the console captured, parse what
the board printed, and compare it with what the oracle says the expected Xen profile must do."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hil.atomic import atomic_write
from hil.boards.platform import bundle_for_board
from hil.boot import (
    BootAttempt,
    BootProgress,
    BootStatus,
    RetryPolicy,
    StageResult,
    boot,
)
from hil.boot import StageStatus as BootStageStatus
from hil.compare import Observation, compare
from hil.console import ConsoleGroup, ReconnectPolicy
from hil.diff.behaviour import behaviour
from hil.diff.recording import judge, load_recording
from hil.errors import InfraError
from hil.ffa.errors import FfaFormatError
from hil.lab import NO_HYPERVISOR, profile_label
from hil.probe import MARK, TranscriptBuilder
from hil.results import (
    DIFF_ROLE,
    EVENTS_ROLE,
    PROCESS_LOG_ROLE,
    BootOutcome,
    BootRecord,
    CaseResult,
    StageStatus,
    StageTiming,
    Verdict,
    console_role,
)
from hil.scenario import Scenario
from hil.session import BoardSession
from hil.triage import TFA_BANNER
from hil.xen.log import ConsoleLine, Event, ProbeLine, Stage, XenMessage, parse_stream
from hil.xen.messages import FFA_KEYS, message
from hil.xen.oracle import expect


@dataclass(frozen=True)
class CaseSettings:
    expect_profile: str | None  # None: the board's own profile
    boot_retry: RetryPolicy
    reconnect: ReconnectPolicy
    provenance: dict[str, str]  # run-wide facts (lab file digest, ...)
    # Hears (board, scenario, what the boot does now): the live status of a run.
    watch: Callable[[str, str, BootProgress], None] | None = None


def run_case(
    session: BoardSession, scenario: Scenario, run_dir: Path, settings: CaseSettings
) -> CaseResult:
    board = session.board
    case_dir = run_dir / board.name / scenario.name
    # A board pinned to a recording is judged against it unless a profile is asked for.
    recording = (
        load_recording(board.recording) if board.recording and not settings.expect_profile else None
    )
    profile = settings.expect_profile or (recording.label if recording else board.xen_profile)
    started, t0 = datetime.now(UTC), time.monotonic()

    def result(verdict: Verdict, message: str, **extra: Any) -> CaseResult:
        _keep_process_log(session, case_dir)
        return CaseResult(
            board=board.name,
            scenario=scenario.name,
            verdict=verdict,
            started=started,
            duration_s=time.monotonic() - t0,
            message=message,
            expected_profile=profile,
            board_profile=board.xen_profile,
            artifacts=_artifacts(run_dir, case_dir, session.consoles),
            **extra,
        )

    provenance = dict(settings.provenance)
    watch = settings.watch

    def boot_watch(progress: BootProgress) -> None:
        if watch is not None:
            watch(board.name, scenario.name, progress)

    # Consoles of a board that exists only while powered (an emulator hil launches) connect when
    # it comes up; any other board's must be there before it boots.
    connect_now = session.launched is None or not session.launched.consoles_need_power
    try:
        bundle = bundle_for_board(scenario, board, case_dir / "bundle")
        provenance.update(bundle.provenance())
        # Off first, so the capture starts with the boot under test and nothing before it.
        session.power.power_off()
        session.deployer.deploy(bundle.directory)
        group = ConsoleGroup(
            session.consoles, case_dir, reconnect=settings.reconnect, connect_now=connect_now
        )
        with group, session.capturing(group) as consoles:
            booted = boot(
                board.name,
                board.stages,
                session.power,
                consoles,
                settings.boot_retry,
                relocate=session.refresh_consoles,
                watch=boot_watch,
            )
    except InfraError as exc:
        return result(Verdict.INFRA_ERROR, str(exc), provenance=provenance)

    events = parse_captures(case_dir, session.consoles)
    _write_events(case_dir / "events.json", events)
    common = {
        "attempts": len(booted.attempts),
        "stages": _timings(booted.stages),
        "boots": _boots(booted.attempts, started),
        "provenance": provenance,
    }
    if booted.status is BootStatus.INFRA:
        error = booted.error or "board did not boot"
        # A launched board that died explains the silence its consoles can only show.
        died = session.launched.failure() if session.launched is not None else None
        if died:
            error = f"board '{board.name}': {died} (boot: {error})"
        return result(Verdict.INFRA_ERROR, error, **common)
    if booted.status is BootStatus.PANIC:
        return result(Verdict.FAIL, booted.error or "firmware panicked", **common)

    plan = scenario.probe_plan()
    try:
        observed = observe(events)
    except TranscriptCorrupt as exc:
        return result(Verdict.INFRA_ERROR, str(exc), **common)
    if recording is not None:
        seen = behaviour(events, observed.transcript, plan)
        diff = judge(recording.scenario(scenario).behaviour, seen, recording.label)
    else:
        # The options the bundle records are the ones the board booted Xen with.
        expected = expect(profile, scenario.spmc_config(), plan, bundle.xen_options)
        diff = compare(expected, observed, plan)
    if diff:
        # The whole diff as a file: the terminal shows its start, report.html and junit all of it.
        atomic_write(case_dir / "diff.txt", "".join(f"{d}\n" for d in diff).encode(), sync=False)
        changed = sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("---", "+++"))
        message = f"{changed} lines differ from {profile_label(profile)}"
        return result(Verdict.FAIL, message, diff=diff, **common)
    if profile == NO_HYPERVISOR:
        return result(Verdict.PASS, f"{profile_label(profile)}: behaves as expected", **common)
    return result(Verdict.PASS, f"behaves as {profile}", **common)


class TranscriptCorrupt(InfraError):
    """dom0's probe output holds a line hil cannot read. The probe is hil's own and only prints
    well-formed lines, so the evidence was damaged on the console (noise, lost bytes): the case
    can be judged neither pass nor fail."""


def observe(events: Sequence[Event]) -> Observation:
    """Xen's FF-A lines and dom0's probe answers in the last boot among ``events``
    (TranscriptCorrupt when a probe line is damaged)."""
    xen_lines: list[str] = []
    probe = TranscriptBuilder()
    for event in _last_boot(events):
        if isinstance(event, XenMessage) and event.key in FFA_KEYS:
            xen_lines.append(message(event.key).render(**event.fields))
        elif isinstance(event, ProbeLine) and event.domain == 0:
            try:
                probe.feed(event.kind, dict(event.fields))
            except FfaFormatError as exc:
                raise TranscriptCorrupt(f"{event.console} line {event.line}: {exc}") from None
        elif isinstance(event, ConsoleLine) and event.domain in (0, None) and MARK in event.text:
            raise TranscriptCorrupt(
                f"{event.console} line {event.line}: unreadable probe line {event.raw[:80]!r}"
            )
    return Observation(xen_lines, probe.transcript)


def _last_boot(events: Sequence[Event]) -> list[Event]:
    """Events of the last boot: after a retried boot the capture holds the earlier attempts too."""
    starts = [
        i
        for i, e in enumerate(events)
        if isinstance(e, ConsoleLine) and e.stage is Stage.TFA and e.text.startswith(TFA_BANNER)
    ]
    return list(events[starts[-1] :] if starts else events)


def parse_captures(case_dir: Path, consoles: Iterable[str]) -> list[Event]:
    """Every event in the raw captures of ``consoles`` under ``case_dir``, console by console."""
    events: list[Event] = []
    for name in consoles:
        raw = case_dir / f"{name}.raw"
        if raw.exists():
            with raw.open("rb") as stream:
                events.extend(parse_stream(stream, name))
    return events


def _write_events(path: Path, events: Iterable[Event]) -> None:
    def encode(event: Event) -> dict[str, Any]:
        out: dict[str, Any] = {"type": type(event).__name__, "console": event.console}
        out["line"], out["raw"] = event.line, event.raw
        for name in ("key", "kind", "stage", "domain", "level", "fields"):
            value = getattr(event, name, None)
            if value is not None:
                out[name] = dict(value) if name == "fields" else value
        if event.xen_time is not None:
            out["xen_time"] = event.xen_time.text
        return out

    atomic_write(path, json.dumps([encode(e) for e in events], indent=1).encode(), sync=False)


def _timings(stages: Sequence[StageResult]) -> list[StageTiming]:
    """Report timings: a stage spans from the end of the stage before it (the power-cycle for
    the first), which is when its timeout started counting, to its own end; a stage that stalled
    or panicked has no end."""
    timings, previous_end = [], 0.0
    for s in stages:
        status = s.status.reported()
        if status is StageStatus.NOT_REACHED:
            start, end = None, None
        elif status is StageStatus.OK:
            # Stages on different consoles can arrive out of order by a hair: never start a
            # stage after its own marker.
            start, end = min(previous_end, s.reached_s or 0.0), s.done_s
        else:
            start, end = previous_end, None
        timings.append(StageTiming(s.name, s.console or "", start, end, status))
        previous_end = end if end is not None else previous_end
    return timings


_OUTCOMES = {
    BootStatus.BOOTED: BootOutcome.BOOTED,
    BootStatus.PANIC: BootOutcome.PANIC,
    BootStatus.INFRA: BootOutcome.INFRA_ERROR,
}


def _boots(attempts: Sequence[BootAttempt], case_started: datetime) -> list[BootRecord]:
    """Each boot attempt on the case's clock, with the stage it did not get past."""

    def since(moment: datetime) -> float:
        return max(0.0, (moment - case_started).total_seconds())

    records = []
    for attempt in attempts:
        start = since(attempt.started)
        stopped = next(
            (s.name for s in attempt.stages if s.status is not BootStageStatus.PASSED), None
        )
        records.append(
            BootRecord(
                attempt.number,
                start,
                max(start, since(attempt.ended or attempt.started)),
                _OUTCOMES[attempt.status],
                stopped,
                attempt.error or "",
            )
        )
    return records


PROCESS_LOG = "process.log"


def _keep_process_log(session: BoardSession, case_dir: Path) -> None:
    """A copy of the launched board's own log as it is now (an emulator's complaints explain
    an infra error its consoles cannot), beside the case's console captures."""
    log = session.launched.process_log() if session.launched is not None else None
    if log is None:
        return
    try:
        case_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, case_dir / PROCESS_LOG)
    except OSError:
        pass  # never started (nothing to keep): the case's message says why


def _artifacts(run_dir: Path, case_dir: Path, consoles: Iterable[str]) -> dict[str, str]:
    found = {
        console_role(name, kind): case_dir / f"{name}.{kind}"
        for name in consoles
        for kind in ("raw", "log")
    }
    found[EVENTS_ROLE] = case_dir / "events.json"
    found[DIFF_ROLE] = case_dir / "diff.txt"
    found[PROCESS_LOG_ROLE] = case_dir / PROCESS_LOG
    return {role: str(p.relative_to(run_dir)) for role, p in found.items() if p.exists()}
