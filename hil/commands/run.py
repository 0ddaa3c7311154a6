"""``hil run``: the nightly job. Every selected board x scenario, with reports under
``--results``. Exit 0 all pass, 1 a check failed, 2 usage/config error, 3 infrastructure failure;
a failed check outranks an infrastructure failure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hil.atomic import check_writable_dir
from hil.boards.platform import prepare_board
from hil.commands.common import (
    USAGE_EXIT,
    ReaderMayLeave,
    add_command,
    add_lab_option,
    exit_codes,
    lab_from,
)
from hil.config import check_seconds
from hil.diff.recording import check_target, load_recording
from hil.diff.runs import record_run
from hil.errors import InfraError, UsageError, os_error_text
from hil.guest import PROBE
from hil.progress import ProgressPrinter
from hil.report.summary import reports_exit
from hil.runner import Runner, RunRequest
from hil.scenario import SCENARIO_DIR
from hil.selection import select
from hil.xen.oracle import PROFILES

DESCRIPTION = """\
For each selected board x scenario: build the scenario's firmware bundle, deploy it, power-cycle
the board, capture every console, follow the boot stages, and compare what Xen printed and what
the dom0 probe was answered with the oracle for the expected Xen profile. A FAIL prints the start
of its diff; results/<run-id>/ gets report.html, junit.xml, summary.json and every capture, and
results/latest points at the last run.

Selection: --board and --scenario (names; scenarios also take globs like 'count-*'), --tag (a tag
of boards in the lab file narrows the boards, a tag of scenarios the scenarios), and
--rerun-failed RUN_DIR (the cases that failed, errored or were not run there). Without
--board: the lab's default boards. A board whose boots fail offline_after times in a row
(lab.toml, default 2) is taken offline: its remaining cases are not run, with the reason."""

EPILOG = exit_codes(
    "0  every case passed",
    "1  a check failed: the firmware or Xen did not behave as the profile says",
    USAGE_EXIT,
    "3  a case could not be judged: a board did not boot, a console was lost, a board was",
    "   busy or offline, this machine failed (a full disk, an unusable results or lock",
    "   directory), the run was interrupted (Ctrl-C or SIGTERM)",
) + (
    "\n\nA run with both failed checks and infrastructure errors exits 1 (the failure is real\n"
    "whatever else went wrong); its last line counts both."
)


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub, "run", "check boards x scenarios and write reports", DESCRIPTION, EPILOG
    )
    add_lab_option(parser)
    parser.add_argument("--board", action="append", default=[], help="board (repeatable)")
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        help="scenario name or glob, e.g. 'count-*' (repeatable; hil scenarios lists them)",
    )
    parser.add_argument(
        "--tag",
        action="append",
        default=[],
        help="only boards and/or scenarios carrying this tag (repeatable: any of them)",
    )
    parser.add_argument(
        "--rerun-failed",
        type=Path,
        metavar="RUN_DIR",
        help="rerun the cases that did not pass in that run (its results directory): failed, "
        "errored or not run",
    )
    parser.add_argument(
        "--scenarios-dir",
        type=Path,
        default=SCENARIO_DIR,
        metavar="DIR",
        help="where scenario files live",
    )
    parser.add_argument(
        "--results", type=Path, metavar="DIR", help="results directory (default: the lab's)"
    )
    parser.add_argument(
        "--expect-profile",
        metavar="PROFILE",
        help=f"Xen behaviour the check expects ({', '.join(PROFILES)}; default: each board's)",
    )
    parser.add_argument(
        "-j", "--jobs", type=int, default=1, metavar="N", help="boards checked in parallel"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for a board another hil process holds (default: skip it)",
    )
    parser.add_argument(
        "--record",
        type=Path,
        metavar="DIR",
        help="save what each scenario showed as golden files in DIR (one board; a board with "
        "expect = 'recorded:DIR' is then judged against them); refused if a case was not judged",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.expect_profile is not None and args.expect_profile not in PROFILES:
        raise UsageError(
            f"--expect-profile: unknown profile {args.expect_profile!r} "
            f"(known: {', '.join(PROFILES)})"
        )
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    problem = check_seconds(args.wait, allow_zero=True)
    if problem is not None:
        raise UsageError(f"--wait {problem}")
    lab = lab_from(args)
    chosen = select(lab, args.scenarios_dir, args.board, args.scenario, args.tag, args.rerun_failed)
    request = RunRequest(
        boards=chosen.boards,
        scenarios=chosen.scenarios,
        results_dir=args.results or lab.results_dir,
        expect_profile=args.expect_profile or chosen.expect_profile,
        jobs=args.jobs,
        lock_wait_s=args.wait,
        only=chosen.only,
    )
    if not any(request.scenarios_for(b.name) for b in request.boards):
        # A run of nothing would pass having checked nothing.
        raise UsageError("the selection holds no board x scenario case: nothing to run")
    try:
        check_writable_dir(request.results_dir)
    except OSError as exc:
        raise InfraError(f"results directory: {os_error_text(exc)}") from None
    if args.record is not None:
        if len(chosen.boards) != 1:
            raise UsageError("--record: records one board's run; choose one with --board")
        check_target(args.record)
        if chosen.boards[0].guest != PROBE:
            # A recording holds the probe's answers (hil.diff); that guest gives none.
            raise UsageError(
                f"--record: board '{chosen.boards[0].name}' boots the {chosen.boards[0].guest} "
                "guest; recordings hold the probe's answers"
            )
    for board in request.boards:
        if board.recording is not None and args.expect_profile is None:
            load_recording(board.recording).check(request.scenarios)
        prepare_board(board)
    runner = Runner(lab, request, ProgressPrinter(ReaderMayLeave(sys.stdout)))
    result = runner.run()
    if args.record is not None:
        by_name = {s.name: s for s in request.scenarios}
        normal = chosen.boards[0].roles.normal
        try:
            recording = record_run(args.record, runner.run_dir, result.cases, by_name, normal)
        except (InfraError, OSError) as exc:
            why = str(exc) if isinstance(exc, InfraError) else os_error_text(exc)
            error = InfraError(
                why if why.startswith("--record") else f"--record {args.record}: {why}"
            )
            # A failed check outranks the recording that could not be made, as it outranks
            # reports that could not be written: exit 1, as the run's summary says.
            error.exit_code = reports_exit(result)
            raise error from None
        print(f"recorded {len(recording.scenarios)} scenarios in {recording.directory}")
    return int(result.exit_code)
