"""Benchmark: what the controller itself costs per scenario, and what parallel boards buy.

A. Overhead. One virtual board with its realistic stage delays runs every shipped scenario; each
   case's duration (bundle written -> verdict) minus the board's modelled boot time (the sum of its
   stage delays) is the controller's own overhead. Target: median under 5% of the boot time.
   The same matrix with zero-delay stages gives the absolute overhead per case.
B. Parallel boards. Four virtual boards run the matrix with ``-j 4`` (4 x 22 cases) against one
   board running it alone (22 cases). Four boards doing four times the work in about the same wall
   time means the matrix costs about a quarter of the time per board. Target: T(4 boards) / (4 x
   T(1 board)) about 0.25 (under 0.3).

    python -m bench.controller_bench [--rounds 3]

Prints the figures and exits 1 when a target is missed or any case does not pass."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

from hil.lab import load_lab
from hil.progress import ProgressPrinter
from hil.results import RunResult, Verdict
from hil.runner import Runner, RunRequest
from hil.scenario import load_scenarios
from hil.sim.boot_script import REALISTIC_DELAYS
from tests.labs import write_lab

OVERHEAD_TARGET = 0.05
PARALLEL_TARGET = 0.30


def run_matrix(directory: Path, boards: int, jobs: int, stage_delay: float | None) -> RunResult:
    names: dict[str, dict] = {f"vb{i}": {} for i in range(boards)}
    lab = load_lab(write_lab(directory, names, stage_delay=stage_delay))
    request = RunRequest(
        boards=lab.select(list(names)),
        scenarios=load_scenarios(),
        results_dir=directory / "results",
        jobs=jobs,
    )
    with contextlib.redirect_stdout(io.StringIO()) as out:
        run = Runner(lab, request, ProgressPrinter(out)).run()
    bad = [f"{c.board}/{c.scenario}: {c.message}" for c in run.cases if c.verdict != Verdict.PASS]
    if bad:
        raise SystemExit(f"bench run did not pass: {bad[:3]}")
    return run


def wall(run: RunResult) -> float:
    return (run.finished - run.started).total_seconds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    modelled = sum(REALISTIC_DELAYS.values())
    overheads, zero_delay, ratios = [], [], []
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        os.environ["HIL_LOCK_DIR"] = str(Path(tmp) / "locks")
        for n in range(args.rounds):
            base = Path(tmp) / f"round{n}"
            realistic = run_matrix(base / "realistic", 1, 1, None)
            overheads += [c.duration_s - modelled for c in realistic.cases]
            zero = run_matrix(base / "zero", 1, 1, 0.0)
            zero_delay += [c.duration_s for c in zero.cases]
            started = time.monotonic()
            one = run_matrix(base / "one", 1, 1, None)
            four = run_matrix(base / "four", 4, 4, None)
            ratios.append(wall(four) / (4 * wall(one)))
            print(
                f"round {n + 1}: 1 board {wall(one):.1f} s ({len(one.cases)} cases), 4 boards "
                f"{wall(four):.1f} s ({len(four.cases)} cases), {time.monotonic() - started:.0f} s"
            )
    overhead = statistics.median(overheads)
    ratio = statistics.median(ratios)
    print(f"modelled boot per case:        {modelled:.3f} s (virtual board's stage delays)")
    print(
        f"controller overhead per case:  median {overhead * 1000:.0f} ms = "
        f"{overhead / modelled:.1%} of the boot (max {max(overheads) * 1000:.0f} ms), "
        f"target < {OVERHEAD_TARGET:.0%}"
    )
    print(f"zero-delay case, start->verdict: median {statistics.median(zero_delay) * 1000:.0f} ms")
    print(f"4 boards / (4 x 1 board):      {ratio:.3f} (1/4 = 0.25), target < {PARALLEL_TARGET}")
    missed = overhead / modelled >= OVERHEAD_TARGET or ratio >= PARALLEL_TARGET
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
