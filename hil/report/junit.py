"""junit.xml for CI: one testsuite per board, one testcase per board x scenario. A failed check
is a <failure> carrying the diff, a broken lab an <error> carrying the console tail, a case not
run an <error type="not_run"> too: like the exit code (3), a report must not pass for work that
was not done, and CI servers count <skipped> as green. Failures and errors carry the consoles'
last lines and the capture files in <system-out>; run and case provenance go into <properties>.
Every ``time`` is wall-clock time: a suite's runs from its first case's start to its last case's
end, the run's from start to finish, so boards checked in parallel do not add up to more time
than the run took."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hil.report.tail import console_tails
from hil.results import CaseResult, RunResult, Verdict
from hil.terminal import neutralise

FILE_NAME = "junit.xml"
# Characters XML 1.0 cannot carry at all, even escaped; ElementTree would write them verbatim
# and produce a file no CI server can parse. (neutralise() already drops C0/C1 and surrogates.)
_NOT_XML = re.compile("[\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("", neutralise(text))


def _timestamp(moment: datetime) -> str:
    # The JUnit schema's timestamp has no zone; UTC keeps runs from different hosts comparable.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _properties(parent: ET.Element, items: Iterable[tuple[str, str]]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in items:
        ET.SubElement(props, "property", name=_clean(name), value=_clean(value))


def _run_properties(run: RunResult) -> list[tuple[str, str]]:
    items = [("run_id", run.run_id), ("lab_file", run.lab_file)]
    items.append(("interrupted", str(run.interrupted).lower()))
    return items + sorted(run.provenance.items())


def _case_properties(case: CaseResult) -> list[tuple[str, str]]:
    items = [("attempts", str(case.attempts))]
    if case.expected_profile:
        items.append(("expected_profile", case.expected_profile))
    if case.board_profile:
        items.append(("board_profile", case.board_profile))
    items += sorted(case.provenance.items())
    items += [(f"artifact:{role}", path) for role, path in sorted(case.artifacts.items())]
    return items


def _infra_text(case: CaseResult, run_dir: Path) -> str:
    parts = [case.message, *case.diff]
    for console, lines in console_tails(case, run_dir).items():
        parts += ["", f"last lines of console {console}:", *lines]
    return "\n".join(parts)


def _system_out(case: CaseResult, run_dir: Path) -> str:
    parts = []
    for console, lines in console_tails(case, run_dir).items():
        parts += [f"last lines of console {console}:", *lines, ""]
    if case.artifacts:
        parts.append("files (relative to this report):")
        parts += [f"  {role}: {path}" for role, path in sorted(case.artifacts.items())]
    return "\n".join(parts)


def _testcase(suite: ET.Element, case: CaseResult, run_dir: Path) -> None:
    element = ET.SubElement(
        suite,
        "testcase",
        classname=case.board,
        name=case.scenario,
        time=f"{case.duration_s:.3f}",
        timestamp=_timestamp(case.started),
    )
    _properties(element, _case_properties(case))
    message = _clean(case.message) or case.verdict.value
    if case.verdict is Verdict.FAIL:
        failure = ET.SubElement(element, "failure", message=message, type="fail")
        failure.text = _clean("\n".join(case.diff) or case.message)
    elif case.verdict is Verdict.INFRA_ERROR:
        error = ET.SubElement(element, "error", message=message, type="infra_error")
        error.text = _clean(_infra_text(case, run_dir))
    elif case.verdict is Verdict.NOT_RUN:
        ET.SubElement(element, "error", message=message, type="not_run")
    if case.verdict in (Verdict.FAIL, Verdict.INFRA_ERROR):
        ET.SubElement(element, "system-out").text = _clean(_system_out(case, run_dir))


def _wall_time(cases: list[CaseResult]) -> float:
    """From the first case's start to the last case's end."""
    if not cases:
        return 0.0
    end = max(c.started + timedelta(seconds=c.duration_s) for c in cases)
    return (end - min(c.started for c in cases)).total_seconds()


def _count_attrs(cases: list[CaseResult], seconds: float) -> dict[str, str]:
    verdicts = [c.verdict for c in cases]
    return {
        "tests": str(len(cases)),
        "failures": str(verdicts.count(Verdict.FAIL)),
        "errors": str(verdicts.count(Verdict.INFRA_ERROR) + verdicts.count(Verdict.NOT_RUN)),
        "skipped": "0",
        "time": f"{seconds:.3f}",
    }


def render_junit(run: RunResult, run_dir: Path) -> bytes:
    wall = (run.finished - run.started).total_seconds() if run.finished else _wall_time(run.cases)
    root = ET.Element("testsuites", name=f"hil run {run.run_id}", **_count_attrs(run.cases, wall))
    by_board: dict[str, list[CaseResult]] = {}
    for case in run.cases:
        by_board.setdefault(case.board, []).append(case)
    for board, cases in by_board.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=board,
            timestamp=_timestamp(min(c.started for c in cases)),
            **_count_attrs(cases, _wall_time(cases)),
        )
        _properties(suite, _run_properties(run))
        for case in cases:
            _testcase(suite, case, run_dir)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
