"""``hil run``: the nightly job. Every selected board x scenario, with reports under
``--results``. Exit 0 all pass, 1 a check failed, 2 usage/config error, 3 infrastructure failure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hil.bundle import prepare_board
from hil.commands.common import add_lab_option, lab_from
from hil.errors import UsageError
from hil.runner import Runner, RunRequest
from hil.scenario import SCENARIO_DIR, load_scenarios
from hil.terminal import ProgressPrinter
from hil.xen.oracle import PROFILES


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("run", help="check boards x scenarios and write reports")
    add_lab_option(parser)
    parser.add_argument("--board", action="append", default=[], help="board (repeatable)")
    parser.add_argument("--scenario", action="append", default=[], help="scenario (repeatable)")
    parser.add_argument(
        "--scenarios-dir", type=Path, default=SCENARIO_DIR, help="where scenario files live"
    )
    parser.add_argument("--results", type=Path, help="results directory (default: the lab's)")
    parser.add_argument(
        "--expect-profile",
        help=f"Xen behaviour the check expects ({', '.join(PROFILES)}; default: each board's)",
    )
    parser.add_argument("-j", "--jobs", type=int, default=1, help="boards checked in parallel")
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for a board another hil process holds (default: skip it)",
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
    lab = lab_from(args)
    request = RunRequest(
        boards=lab.select(args.board),
        scenarios=load_scenarios(args.scenarios_dir, args.scenario or None),
        results_dir=args.results or lab.results_dir,
        expect_profile=args.expect_profile,
        jobs=args.jobs,
        lock_wait_s=args.wait,
    )
    for board in request.boards:
        prepare_board(board)
    runner = Runner(lab, request, ProgressPrinter(sys.stdout))
    result = runner.run()
    print(f"report: {runner.run_dir / 'report.html'}")
    return int(result.exit_code)
