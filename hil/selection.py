"""Which boards x scenarios a run checks: board names, scenario names or globs, tags (a tag
selects the boards of lab.toml and the scenarios that carry it), and the cases an earlier run
failed, could not judge or did not run (``--rerun-failed``). Every selection that would run
nothing is a one-line usage error before any board is touched."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hil.config import display_path
from hil.errors import UsageError
from hil.lab import BoardConfig, Lab
from hil.report.summary import FILE_NAME as SUMMARY_FILE
from hil.report.summary import load_summary
from hil.results import Verdict
from hil.scenario import Scenario, load_scenarios

# Every case that run did not pass: one never run (a board offline or busy, an interrupted run)
# was no more checked than one that errored, and a rerun that left it out could exit 0.
RERUN_VERDICTS = (Verdict.FAIL, Verdict.INFRA_ERROR, Verdict.NOT_RUN)


@dataclass(frozen=True)
class Selection:
    boards: list[BoardConfig]
    scenarios: list[Scenario]
    only: frozenset[tuple[str, str]] | None = None  # just these (board, scenario) pairs
    # The profile the earlier run checked against, when it was not the boards' own.
    expect_profile: str | None = None


def select(
    lab: Lab,
    scenarios_dir: Path,
    boards: Sequence[str] = (),
    scenarios: Sequence[str] = (),
    tags: Sequence[str] = (),
    rerun: Path | None = None,
) -> Selection:
    only = expect = None
    if rerun is not None:
        only, expect = _failed_cases(rerun)
        boards = boards or list(dict.fromkeys(b for b, _ in only))
        scenarios = scenarios or list(dict.fromkeys(s for _, s in only))
    board_tags = {t for b in lab.boards.values() for t in b.tags}
    chosen_boards = _boards(lab, boards, bool(board_tags & set(tags)))
    chosen_scenarios = load_scenarios(scenarios_dir, list(dict.fromkeys(scenarios)) or None)
    if tags:
        known = {t for s in load_scenarios(scenarios_dir) for t in s.tags}
        chosen_boards, chosen_scenarios = _by_tags(
            chosen_boards, chosen_scenarios, tags, board_tags, known
        )
    if only is not None:
        names = {b.name for b in chosen_boards}, {s.name for s in chosen_scenarios}
        only = frozenset(p for p in only if p[0] in names[0] and p[1] in names[1])
        if not only:
            raise UsageError(f"--rerun-failed {rerun}: none of its failures is selected")
        chosen_boards = [b for b in chosen_boards if any(p[0] == b.name for p in only)]
    return Selection(chosen_boards, chosen_scenarios, only, expect)


def _boards(lab: Lab, names: Sequence[str], by_tag: bool) -> list[BoardConfig]:
    if names:
        return [lab.board(n) for n in dict.fromkeys(names)]
    # A board tag chooses among every board; without one a run takes the lab's default boards.
    return list(lab.boards.values()) if by_tag else lab.select()


def _by_tags(
    boards: list[BoardConfig],
    scenarios: list[Scenario],
    tags: Sequence[str],
    board_tags: set[str],
    scenario_tags: set[str],
) -> tuple[list[BoardConfig], list[Scenario]]:
    """A tag carried by boards of the lab narrows the boards, one carried by any scenario
    narrows the scenarios (both, when both carry it); a tag nothing carries is an error."""
    for tag in tags:
        if tag not in board_tags | scenario_tags:
            raise UsageError(
                f"--tag {tag!r}: no board or scenario has it (board tags: "
                f"{', '.join(sorted(board_tags)) or 'none'}; scenario tags: "
                f"{', '.join(sorted(scenario_tags)) or 'none'})"
            )
    on_boards = set(tags) & board_tags
    on_scenarios = set(tags) & scenario_tags
    if on_boards:
        boards = [b for b in boards if on_boards & set(b.tags)]
        if not boards:
            raise UsageError(f"--tag {', '.join(sorted(on_boards))}: no selected board has it")
    if on_scenarios:
        scenarios = [s for s in scenarios if on_scenarios & set(s.tags)]
        if not scenarios:
            raise UsageError(
                f"--tag {', '.join(sorted(on_scenarios))}: no selected scenario has it"
            )
    return boards, scenarios


def _failed_cases(run_dir: Path) -> tuple[frozenset[tuple[str, str]], str | None]:
    """The (board, scenario) pairs that failed, hit an infra error or were not run in an earlier
    run, and the profile they were checked against when that was not their boards' own."""
    path = run_dir if run_dir.name == SUMMARY_FILE else run_dir / SUMMARY_FILE
    run = load_summary(path)
    failed = [c for c in run.cases if c.verdict in RERUN_VERDICTS]
    if not failed:
        raise UsageError(f"{display_path(path)}: every case passed: nothing to rerun")
    # --expect-profile applies to every case: read it from every case that records a profile
    # (one never run records none, and a board whose own profile is the one asked for shows
    # no override), or the rerun would judge against the boards' own profiles and could pass.
    judged = [c for c in run.cases if c.expected_profile is not None]
    overridden = {c.expected_profile for c in judged if c.expected_profile != c.board_profile}
    same = len(overridden) == 1 and all(c.expected_profile in overridden for c in judged)
    return frozenset(c.key for c in failed), overridden.pop() if same else None
