"""``hil check BOARD``: board bring-up. Boot once (no retries: bring-up wants the first failure),
print each boot stage with its time, and where it stalls the last console lines seen. The boot
runs a scenario (default all-secure) so the probe stage has something to answer."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from hil.boot import RetryPolicy
from hil.case import CaseSettings, run_case
from hil.commands.common import (
    INFRA_EXIT,
    USAGE_EXIT,
    add_command,
    add_lab_option,
    exit_codes,
    lab_from,
)
from hil.config import display_path
from hil.diff.recording import load_recording
from hil.guest import PROBE
from hil.lab import profile_label
from hil.report.tail import console_tails
from hil.results import CaseResult, StageStatus, Verdict, new_run_id
from hil.scenario import SCENARIO_DIR, load_scenarios
from hil.session import BoardSession
from hil.terminal import neutralise

DEFAULT_SCENARIO = "all-secure"


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "check",
        "boot a board once and report each boot stage (bring-up)",
        "Boot BOARD once with a scenario (no retries: bring-up wants the first failure) and\n"
        "print each boot stage with its time; where it stalls, the last lines of each console.",
        exit_codes(
            "0  the board booted and behaved as its Xen profile says",
            "1  it booted and the check failed (firmware or Xen is wrong), or it panicked",
            USAGE_EXIT,
            INFRA_EXIT,
        ),
    )
    parser.add_argument("board", help="board name from the lab file")
    add_lab_option(parser)
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO, help="scenario to boot")
    parser.add_argument("--scenarios-dir", type=Path, default=SCENARIO_DIR)
    parser.add_argument("--results", type=Path, help="where the capture goes (default: lab's)")
    parser.add_argument("--tail", type=int, default=15, help="console lines shown on a stall")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    lab = lab_from(args)
    board = lab.board(args.board)
    (scenario,) = load_scenarios(args.scenarios_dir, [args.scenario])
    out_dir = (args.results or lab.results_dir) / f"check-{new_run_id()}"
    settings = CaseSettings(
        expect_profile=None,
        boot_retry=dataclasses.replace(RetryPolicy(), attempts=1),
        reconnect=lab.reconnect,
        provenance={},
    )
    if board.recording is not None:
        # A pinned board is judged against its recording (hil.case), so that is what it expects;
        # a scenario the recording lacks is refused before the board is powered.
        recording = load_recording(board.recording)
        recording.check([scenario])
        expecting = recording.label
    else:
        expecting = profile_label(board.xen_profile)
    dom0 = "" if board.guest == PROBE else f", {board.guest} as dom0"
    print(f"{board.name}: booting {scenario.name} ({board.type.name}{dom0}; expecting {expecting})")
    with BoardSession(board, out_dir / board.name / ".board") as session:
        case = run_case(session, scenario, out_dir, settings)
    print_stages(case, sys.stdout)
    if case.verdict is Verdict.INFRA_ERROR:
        for console, lines in console_tails(case, out_dir, args.tail).items():
            print(f"last lines on {console}:")
            for line in lines:
                print(f"  {line}")
    print(f"{case.verdict.value.upper()}: {neutralise(case.message)}")
    print(f"capture: {display_path(out_dir / board.name / scenario.name)}")
    return {Verdict.PASS: 0, Verdict.FAIL: 1}.get(case.verdict, 3)


def print_stages(case: CaseResult, stream: Any) -> None:
    for stage in case.stages:
        if stage.status is StageStatus.NOT_REACHED:
            when = "-"
        else:
            end = f"{stage.end_s:7.2f}" if stage.end_s is not None else "      ?"
            when = f"{stage.start_s or 0.0:7.2f} s -> {end} s"
        stream.write(f"  {stage.name:<8} {stage.console or '-':<7} {when:<24} {stage.status}\n")
