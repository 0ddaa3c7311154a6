"""One check: a scenario on a board. Deploy its bundle, boot with the console captured, parse what
the board printed, and compare it with what the oracle says the expected Xen profile must do."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from hil.bundle import Bundle
from hil.compare import compare, compare_linux
from hil.console import ConsoleGroup, ReconnectPolicy
from hil.diff.behaviour import behaviour
from hil.diff.recording import judge, load_recording
from hil.errors import InfraError
from hil.evidence import (
    CaptureParse,
    Deployed,
    EvidenceCheck,
    EvidenceIncomplete,
    last_boot,
    panic_patterns,
)
from hil.evidence import observe as observe
from hil.guest import LINUX
from hil.guest.linux_oracle import expect_linux
from hil.lab import NO_HYPERVISOR, profile_label
from hil.results import (
    DIFF_ROLE,
    EVENTS_ROLE,
    EVIDENCE_ROLE,
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
from hil.xen.log import ConsoleLine, Event, Stage, XenMessage, parse_stream
from hil.xen.messages import message
from hil.xen.oracle import expect

# How a case message starts when Xen's panic() ended the boot (hil.case.xen_panic).
XEN_PANICKED = "Xen panicked"
# dom0's kernel panicking because it could not run the guest at all (no initramfs or init, no
# memory): the lab's kernel or its options, never what the firmware or Xen did with FF-A. A
# driver's oops ("Fatal exception", or init killed by one: "Attempted to kill init!") stays a FAIL.
DOM0_NOT_STARTED = re.compile(
    r"Kernel panic - not syncing: (?:VFS: Unable to mount root fs|No working init found|"
    r"Requested init \S+ failed|Out of memory and no killable)"
)


@dataclass(frozen=True)
class CaseSettings:
    expect_profile: str | None  # None: the board's own profile
    boot_retry: RetryPolicy
    reconnect: ReconnectPolicy
    provenance: dict[str, str]  # run-wide facts (lab file digest, ...)
    # Hears (board, scenario, what the boot does now): the live status of a run.
    watch: Callable[[str, str, BootProgress], None] | None = None


def bundle_dir(run_dir: Path, board: str, scenario: str) -> Path:
    """Where a case's bundle is written."""
    return run_dir / board / scenario / "bundle"


def case_consoles(
    session: BoardSession, case_dir: Path, reconnect: ReconnectPolicy
) -> ConsoleGroup:
    """The console capture of a case on ``session``'s board (not open yet)."""
    board = session.board
    # Consoles of a board that exists only while powered (an emulator hil launches) connect when
    # it comes up; any other board's must be there before it boots.
    connect_now = session.launched is None or not session.launched.consoles_need_power
    return ConsoleGroup(
        session.consoles,
        case_dir,
        reconnect=reconnect,
        panic_patterns=panic_patterns(board.roles, session.consoles),
        connect_now=connect_now,
    )


def run_case(
    session: BoardSession,
    scenario: Scenario,
    run_dir: Path,
    settings: CaseSettings,
    bundle_of: Callable[[], Bundle] | None = None,
    capture_of: Callable[[], ConsoleGroup | None] | None = None,
) -> CaseResult:
    """``bundle_of``: the case's bundle when it was made beforehand (hil.runner prepares the
    next case's while this one boots), raising what making it raised; default: made here.
    ``capture_of``: likewise its console capture, prepared (``case_consoles``, then
    ConsoleGroup.prepare), or None; the case opens it, or discards it if it ends before."""
    board = session.board
    case_dir = run_dir / board.name / scenario.name
    # A board pinned to a recording is judged against it unless a profile is asked for.
    pinned = load_recording(board.recording) if board.recording else None
    own = pinned.label if pinned else board.xen_profile  # what the board is judged by default
    recording = None if settings.expect_profile else pinned
    profile = settings.expect_profile or own
    # One clock for everything a case records: the host UTC time consoles stamp their bytes and
    # boot attempts their start and end with, so no time in the case lies beyond its duration.
    started = datetime.now(UTC)

    def result(verdict: Verdict, message: str, **extra: Any) -> CaseResult:
        _keep_process_log(session, case_dir)
        return CaseResult(
            board=board.name,
            scenario=scenario.name,
            verdict=verdict,
            started=started,
            duration_s=(datetime.now(UTC) - started).total_seconds(),
            message=message,
            expected_profile=profile,
            board_profile=own,
            artifacts=_artifacts(run_dir, case_dir, session.consoles),
            **extra,
        )

    provenance = dict(settings.provenance)
    watch = settings.watch
    # A directory booted into before (a test booting one scenario twice) must not hand this
    # case's readers the last boot's judged window or diff: this case writes its own, if any.
    for stale in ("evidence.json", "diff.txt"):
        (case_dir / stale).unlink(missing_ok=True)

    def boot_watch(progress: BootProgress) -> None:
        if watch is not None:
            watch(board.name, scenario.name, progress)

    try:
        if bundle_of is None:
            bundle = bundle_for_board(
                scenario, board, bundle_dir(run_dir, board.name, scenario.name)
            )
        else:
            bundle = bundle_of()
        deployed_facts = bundle.provenance()
        provenance.update(deployed_facts)
        # Off first, so the capture starts with the boot under test and nothing before it.
        session.power.power_off()
        session.deployer.deploy(bundle.directory)
        prepared, capture_of = capture_of() if capture_of is not None else None, None
        if prepared is not None:
            prepared.retarget(session.consoles)  # a labgrid place's may have moved since
        group = prepared or case_consoles(session, case_dir, settings.reconnect)
        # Evidence only from the normal-world console, of the attempt judged, whole, and only
        # of a boot of this bundle.
        xen_version = deployed_facts.get("xen:version")
        deployed = Deployed(
            scenario.spmc_config(),
            scenario.probe_plan(),
            None if xen_version in (None, "unknown") else xen_version,
        )
        evidence = EvidenceCheck(case_dir, group, board.roles, deployed, board.guest)
        with group, session.capturing(group) as consoles:
            booted = boot(
                board.name,
                board.stages,
                session.power,
                consoles,
                settings.boot_retry,
                relocate=session.refresh_consoles,
                watch=boot_watch,
                accept=evidence,
                settle_s=session.console_latency_s,
            )
    except InfraError as exc:
        # Its capture files go before the result lists what the case has on disk.
        _discard_unused(capture_of)
        capture_of = None
        return result(Verdict.INFRA_ERROR, str(exc), provenance=provenance)
    finally:
        if session.launched is not None:
            session.launched.case_done()
        _discard_unused(capture_of)

    # The normal console's capture was parsed as far as the evidence needed: only the rest now.
    events = parse_captures(case_dir, session.consoles, {board.roles.normal: evidence.parse})
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
        why = booted.error or "firmware panicked"
        if DOM0_NOT_STARTED.search(why):
            # The guest never ran: nothing about FF-A was seen, and the kernel is the lab's.
            return result(Verdict.INFRA_ERROR, f"not judged: dom0's kernel: {why}", **common)
        # Only the normal console's own lines can say that Xen panicked (hil.evidence).
        xen_lines = [e for e in events if e.console == board.roles.normal]
        return result(Verdict.FAIL, xen_panic(xen_lines, why) or why, **common)

    plan = scenario.probe_plan()
    judged = evidence.judged[booted.final.number]
    evidence_json = json.dumps(judged.window.to_json()).encode()
    atomic_write(case_dir / "evidence.json", evidence_json, sync=False)
    if recording is not None:
        seen = behaviour(judged.events, judged.observation.transcript, plan)
        diff = judge(recording.scenario(scenario).behaviour, seen, recording.label)
    else:
        # The options the bundle records are the ones the board booted Xen with.
        expected = expect(profile, scenario.spmc_config(), plan, bundle.xen_options)
        if board.guest == LINUX:
            linux = expect_linux(scenario, profile, bundle.xen_options)
            diff = compare_linux(expected, linux, judged.observation)
        else:
            diff = compare(expected, judged.observation, plan)
    if diff:
        # The whole diff as a file: the terminal shows its start, report.html and junit all of it.
        atomic_write(case_dir / "diff.txt", "".join(f"{d}\n" for d in diff).encode(), sync=False)
        changed = sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("---", "+++"))
        message = f"{changed} lines differ from {profile_label(profile)}"
        return result(Verdict.FAIL, message, diff=diff, **common)
    if profile == NO_HYPERVISOR:
        return result(Verdict.PASS, f"{profile_label(profile)}: behaves as expected", **common)
    return result(Verdict.PASS, f"behaves as {profile}", **common)


# What hil.diff reads back from a case; the evidence now is EvidenceIncomplete (hil.evidence).
TranscriptCorrupt = EvidenceIncomplete


def xen_panic(events: Sequence[Event], where: str) -> str | None:
    """``Xen panicked on CPU <n>: <reason>; <where>`` when Xen's panic() ended the last boot
    among ``events``, else None. Xen states its reason on the line after "Panic on CPU n:" (an
    assertion, a BUG, a failed boot step): that line, not the marker, is what tells a Xen bug
    from a firmware that made Xen give up."""
    boot = last_boot(events)
    for i, event in enumerate(boot):
        if isinstance(event, XenMessage) and event.key == "panic":
            after = (_xen_text(e) for e in boot[i + 1 :] if e.console == event.console)
            reason = next((t for t in after if t and t.strip("* ")), None)
            cpu = event.fields["cpu"]
            return f"{XEN_PANICKED} on CPU {cpu}: {reason or '(reason not captured)'}; {where}"
    return None


def _discard_unused(capture_of: Callable[[], ConsoleGroup | None] | None) -> None:
    """Discard the console capture prepared for a case that ended before it needed it."""
    if capture_of is not None and (unused := capture_of()) is not None:
        unused.discard()


def _xen_text(event: Event) -> str | None:
    """The text of Xen's own line (not a guest's it relays), else None."""
    if isinstance(event, XenMessage):
        return message(event.key).render(**event.fields)
    if isinstance(event, ConsoleLine) and event.stage is Stage.XEN and event.domain is None:
        return event.text.strip()[:200]
    return None


def parse_captures(
    case_dir: Path, consoles: Iterable[str], begun: Mapping[str, CaptureParse] | None = None
) -> list[Event]:
    """Every event in the raw captures of ``consoles`` under ``case_dir``, console by console
    (closed captures); ``begun``: the parse of a console's capture already under way."""
    events: list[Event] = []
    for name in consoles:
        raw = case_dir / f"{name}.raw"
        if not raw.exists():
            continue
        if begun is not None and name in begun:
            events.extend(begun[name].rest())
            continue
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

    # One event a line: as readable as indented JSON, and made by json's C encoder (indent
    # makes it take the pure-Python one, at several times the cost).
    lines = ",\n".join(map(json.dumps, map(encode, events)))
    atomic_write(path, f"[\n{lines}\n]\n".encode(), sync=False)


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
    found[EVIDENCE_ROLE] = case_dir / "evidence.json"
    found[DIFF_ROLE] = case_dir / "diff.txt"
    found[PROCESS_LOG_ROLE] = case_dir / PROCESS_LOG
    return {role: str(p.relative_to(run_dir)) for role, p in found.items() if p.exists()}
