"""``hil diff``: review a Xen change by running it. The same scenarios, with the same firmware
bundles, on one board booting a base Xen and a head Xen; per scenario, what changed in Xen's FF-A
lines and in what the guest was answered."""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from hil.boards import IMAGES
from hil.boards.builds import xen_build
from hil.boards.platform import launches, prepare_board
from hil.commands.common import USAGE_EXIT, add_command, add_lab_option, exit_codes, lab_from
from hil.diff.compare import Review, ScenarioDiff, Side
from hil.diff.inputs import Kind, XenInput, parse_input, patched, side_profile
from hil.diff.output import summary_lines, write_html, write_json
from hil.diff.patches import apply_patches, read_patches
from hil.diff.runs import case_side, xen_facts
from hil.errors import UsageError
from hil.firmware.xen import XenSource, XenSourceError
from hil.guest import PROBE
from hil.lab import BoardConfig
from hil.progress import ProgressPrinter
from hil.results import CaseResult, RunResult
from hil.runner import Runner, RunRequest
from hil.scenario import SCENARIO_DIR, Scenario, load_scenarios
from hil.xen.oracle import PROFILES

DESCRIPTION = """\
Boot the selected scenarios (default: all) on BOARD twice, once with the base Xen and once with
the head Xen, with the same firmware bundles, and compare per scenario: Xen's FF-A lines (the
catalogue messages with their arguments, and any other Xen line about FF-A, with timestamps,
addresses, RAM placement and build dates normalised) and the guest's view (the probe's answers,
registers the answer leaves undefined excluded). Each side is also judged against the profile
its Xen release claims (or the board's).

XEN is a Xen source tree, a .tar.xz/.tar.gz of one, or a built xen image (as a board's xen_src /
xen_image); --base also takes recorded:DIR (hil run --record). --head-patch FILE (repeatable,
applied in order) makes the head from the base plus patches: git format-patch output, an mbox of
several patches, or a plain unified diff, -p1 from the tree's root.

Writes results/<run-id>/ (both sides' captures, report.html) with diff.html (side by side) and
diff.json; --json prints that JSON on stdout (progress then goes to stderr)."""

SIDE_LOCK_WAIT_S = 1800.0

EPILOG = exit_codes(
    "0  no behavioural difference in any scenario",
    "1  a scenario differs (also when others could not be compared)",
    USAGE_EXIT + "; a patch that does not apply",
    "3  a scenario was not compared: a boot of either side failed after its retries",
)


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub, "diff", "compare FF-A behaviour of two Xens, scenario by scenario", DESCRIPTION, EPILOG
    )
    add_lab_option(parser)
    parser.add_argument("--board", required=True, help="a board hil boots a given Xen on")
    parser.add_argument("--base", required=True, metavar="XEN", help="the Xen before the change")
    head = parser.add_mutually_exclusive_group(required=True)
    head.add_argument("--head", metavar="XEN", help="the Xen after the change")
    head.add_argument(
        "--head-patch",
        action="append",
        type=Path,
        metavar="FILE",
        help="patch the base with FILE (repeatable, applied in order)",
    )
    parser.add_argument(
        "--scenario", action="append", default=None, help="scenario name or glob (repeatable)"
    )
    parser.add_argument(
        "--scenarios-dir", type=Path, default=SCENARIO_DIR, metavar="DIR", help="scenario files"
    )
    parser.add_argument(
        "--results", type=Path, metavar="DIR", help="results directory (default: the lab's)"
    )
    parser.add_argument("--json", action="store_true", help="print diff.json on stdout")
    parser.add_argument(
        "-j", "--jobs", type=int, default=1, metavar="N", help="run base and head in parallel (2)"
    )
    parser.set_defaults(handler=run)


class _SideProgress(ProgressPrinter):
    """The runner's live progress without its run table or each failed side's diff against its
    profile: the review prints its own summary (the side's verdict is in it, its diff in
    report.html)."""

    def case_finished(self, case: CaseResult) -> None:
        super().case_finished(replace(case, diff=[]))

    def run_finished(self, run: RunResult, report: Path | None = None) -> None:
        self.close()


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    lab = lab_from(args)
    board = lab.board(args.board)
    if board.type.name not in IMAGES or launches(board) is None:
        raise UsageError(
            f"--board {board.name}: hil diff boots a given Xen on boards hil launches and "
            f"builds images for ({', '.join(IMAGES)}), not this {board.type.name} board"
        )
    if board.guest != PROBE:
        raise UsageError(
            f"--board {board.name}: boots the {board.guest} guest; hil diff compares the "
            "probe's answers (use a board without guest)"
        )
    scenarios = load_scenarios(args.scenarios_dir, args.scenario)
    base = parse_input("--base", args.base)
    patches = [p for f in args.head_patch or () for p in read_patches(f)]
    if patches and not base.buildable:
        raise UsageError(f"--head-patch: the base must be a Xen tree or archive, not {base.kind}")
    with tempfile.TemporaryDirectory(prefix="hil-diff-") as scratch:
        if patches:
            try:
                root = XenSource.of(base.path).unpack(Path(scratch) / "src")
            except XenSourceError as exc:
                raise UsageError(f"--base: {exc}") from None
            apply_patches(patches, root)
            head = patched(base, root, patches)
        else:
            head = parse_input("--head", args.head)
            if head.kind is Kind.RECORDED:
                raise UsageError("--head: a recording can only be the base (--base recorded:DIR)")
        review = _review(args, lab, board, base, head, scenarios)
    stream = sys.stdout
    run_dir = Path(review.run_dir)
    text = write_json(review, run_dir / "diff.json")
    write_html(review, run_dir / "diff.html")
    if args.json:
        stream.write(text)
    else:
        stream.write("".join(f"{line}\n" for line in summary_lines(review)))
    return int(review.exit_code)


def _review(
    args: argparse.Namespace,
    lab: Any,
    board: BoardConfig,
    base: XenInput,
    head: XenInput,
    scenarios: list[Scenario],
) -> Review:
    recording = base.recording() if base.kind is Kind.RECORDED else None
    if recording is not None:
        recording.check(scenarios)
    sides = {"base": base, "head": head}
    boards = {
        name: _judged_board(side.board(board, name), board)
        for name, side in sides.items()
        if side.kind is not Kind.RECORDED
    }
    request = RunRequest(
        boards=list(boards.values()),
        scenarios=scenarios,
        results_dir=args.results or lab.results_dir,
        jobs=args.jobs,
        # Another review on this host holds "base"/"head" (and their QEMU work directories):
        # wait for it rather than report every scenario as not compared.
        lock_wait_s=SIDE_LOCK_WAIT_S,
    )
    progress = _SideProgress(sys.stderr if args.json else sys.stdout)
    runner = Runner(lab, request, progress)
    result = runner.run()
    cases = {(c.board, c.scenario): c for c in result.cases}
    provenance = {name: _provenance(side, boards.get(name), cases) for name, side in sides.items()}
    diffs = []
    for scenario in scenarios:
        got = {
            name: case_side(
                runner.run_dir,
                cases.get((name, scenario.name)),
                scenario,
                boards[name].roles.normal,
            )
            for name in boards
        }
        if recording is not None:
            recorded = recording.scenario(scenario).behaviour
            got["base"] = Side("recorded", f"as {recording.label}", recorded, recording.label)
        diffs.append(ScenarioDiff.of(scenario.name, got["base"], got["head"]))
    if recording is not None:
        provenance["base"].update(recording.provenance)
    return Review(provenance["base"], provenance["head"], diffs, str(runner.run_dir))


def _judged_board(side: BoardConfig, board: BoardConfig) -> BoardConfig:
    """``side`` built (a build failure ends the review here: 2 bad source, 3 failed build) and
    judged against the profile its Xen release claims, else the board's."""
    prepare_board(side)
    build = xen_build(side)
    profile = side_profile(build.version if build else None, board.xen_profile)
    if profile not in PROFILES:
        raise UsageError(
            f"--board {board.name}: no Xen profile to judge {side.name} against (give the board "
            f"a xen_profile: {', '.join(PROFILES)})"
        )
    return replace(side, xen_profile=profile)


def _provenance(
    side: XenInput, board: BoardConfig | None, cases: dict[tuple[str, str], Any]
) -> dict[str, Any]:
    out = side.provenance()
    if board is None:
        return out
    out["profile"] = board.xen_profile
    for (name, _), case in cases.items():
        if name == board.name and case.provenance:
            out.update(xen_facts(case))
            break
    return out
