"""What a run's cases showed, read back from their captures: each case becomes a
:class:`hil.diff.compare.Side` for a review, or a scenario of a recording (``hil run --record``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from hil.case import TranscriptCorrupt, observe, parse_captures
from hil.diff.behaviour import Behaviour, behaviour
from hil.diff.compare import Side
from hil.diff.normalise import normalise
from hil.diff.recording import Recording, write_recording
from hil.errors import InfraError
from hil.evidence import Window
from hil.results import EVIDENCE_ROLE, BootOutcome, CaseResult, Verdict
from hil.scenario import Scenario

JUDGED = (Verdict.PASS, Verdict.FAIL)
# How a boot that panicked says where (hil.boot, hil.console.wait), after the board's name.
_PANIC = re.compile(r"console '([^']*)': panic: (.*)$")


def case_behaviour(
    run_dir: Path, case: CaseResult, scenario: Scenario, normal_console: str
) -> Behaviour:
    """What ``case`` showed, from its raw captures (TranscriptCorrupt if the probe's evidence
    is damaged); ``normal_console``: its board's normal-world console, the only evidence."""
    case_dir = run_dir / case.board / case.scenario
    if EVIDENCE_ROLE in case.artifacts:
        # Exactly what the case judged: its normal-world console's last boot (hil.evidence).
        window = Window.load(run_dir / case.artifacts[EVIDENCE_ROLE])
        events = window.read(case_dir)
        return behaviour(events, observe(events, window.console).transcript, scenario.probe_plan())
    # A case that judged no boot of its own (a panic): its normal-world console, as far as it
    # got (never the secure one, whatever order the board type lists its consoles in).
    events = parse_captures(case_dir, [normal_console])
    seen = observe(events, normal_console, whole=False).transcript
    shown = behaviour(events, seen, scenario.probe_plan())
    panic = _panic(case)
    # The panic itself is behaviour: a secure world's or TF-A's panic after the probe's last
    # line leaves the normal console as a clean boot's, and the two would read the same.
    return shown if panic is None else replace(shown, xen=(*shown.xen, panic))


def _panic(case: CaseResult) -> str | None:
    """The line saying where and how ``case``'s last boot panicked (without the board's name,
    which differs between sides), or None when it did not panic."""
    last = case.boots[-1] if case.boots else None
    if last is None or last.outcome is not BootOutcome.PANIC:
        return None
    found = _PANIC.search(last.error)
    if found is None:
        return "panic (where not recorded)"
    return f"panic on console '{found[1]}': {normalise(found[2])}"


def case_side(
    run_dir: Path, case: CaseResult | None, scenario: Scenario, normal_console: str
) -> Side:
    """One side of a review: the case's verdict and, if it was judged, what it showed."""
    if case is None:
        return Side(Verdict.NOT_RUN.value, "not run", None)
    expected, captures = case.expected_profile or "", f"{case.board}/{case.scenario}"
    if case.verdict not in JUDGED:
        return Side(case.verdict.value, case.message, None, expected, captures)
    try:
        seen = case_behaviour(run_dir, case, scenario, normal_console)
    except TranscriptCorrupt as exc:
        return Side(Verdict.INFRA_ERROR.value, str(exc), None, expected, captures)
    return Side(case.verdict.value, case.message, seen, expected, captures)


def record_run(
    directory: Path,
    run_dir: Path,
    cases: Sequence[CaseResult],
    scenarios: Mapping[str, Scenario],
    normal_console: str,
) -> Recording:
    """Record every case of one board's run in ``directory``, all or nothing: a case that was
    not judged (InfraError naming it) leaves the directory untouched."""
    for case in cases:
        if case.verdict not in JUDGED:
            raise InfraError(
                f"--record {directory}: nothing recorded: {case.board}/{case.scenario} was not "
                f"judged ({case.verdict.value}: {case.message})"
            )
    observed = []
    for case in cases:
        try:
            scenario = scenarios[case.scenario]
            observed.append((scenario, case_behaviour(run_dir, case, scenario, normal_console)))
        except TranscriptCorrupt as exc:
            raise InfraError(f"--record {directory}: nothing recorded: {exc}") from None
    provenance = {"board": cases[0].board, **xen_facts(cases[0])} if cases else {}
    return write_recording(directory, observed, provenance)


def xen_facts(case: CaseResult) -> dict[str, str]:
    """The Xen a case booted: version, source, .config and image sha256s (the image is listed
    under its bundle path; named here so both sides read alike)."""
    facts = {}
    for key, value in case.provenance.items():
        if key.startswith("xen:"):
            facts["xen:image_sha256" if "/" in key else key] = value
    return facts
