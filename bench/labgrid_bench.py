"""Benchmark: `hil run` through labgrid against the same virtual boards reached directly.

Four virtual boards (stage delay ``--stage-delay`` s per boot stage, so boot time dominates as on
hardware) are exported as places on a loopback labgrid coordinator. Each round runs the whole
scenario matrix (every scenario on every board):

- labgrid: 4 boards through their places, ``-j 4``;
- direct: the same 4 boards by their TCP consoles, ``-j 4``;
- single: one board directly, ``-j 1`` (a quarter of the cases).

Reported as medians over ``--rounds`` rounds (interleaved, one process):
``labgrid / direct`` (target <= 1.3: what leasing costs) and ``labgrid / single`` (target <= 1.3:
four boards through labgrid run four times the cases in about the time one board runs its
quarter, i.e. labgrid against 1/4 of the time one board would need for the whole matrix).
Exit 1 when a target is missed or a case does not pass.

    python -m bench.labgrid_bench [--stage-delay 0.2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hil.cli import main as hil_main
from tests.labgrid_lab import missing_tools
from tests.labgrid_virtual import virtual_places

BOARDS = ["vb0", "vb1", "vb2", "vb3"]
TARGET = 1.3


def timed_run(lab: Path, results: Path, *argv: str) -> float:
    """Seconds one in-process `hil run` takes; raises unless every case passed."""
    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):
        code = hil_main(["run", "--lab", str(lab), "--results", str(results), *argv])
    elapsed = time.monotonic() - started
    (run_dir,) = sorted(p for p in results.iterdir() if p.is_dir())[-1:]
    cases = json.loads((run_dir / "summary.json").read_text())["run"]["cases"]
    failed = [
        f"{c['board']}/{c['scenario']}: {c['message']}" for c in cases if c["verdict"] != "pass"
    ]
    if code != 0 or failed:
        raise SystemExit(f"run {' '.join(argv)} did not pass (exit {code}): {failed[:3]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage-delay", type=float, default=0.2, help="seconds per boot stage")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if missing := missing_tools():
        print(f"needs {', '.join(missing)}: pip install -e '.[labgrid]' && apt-get install ser2net")
        return 2
    with tempfile.TemporaryDirectory(prefix="hil-lgbench-") as tmp:
        work = Path(tmp)
        os.environ["HIL_LOCK_DIR"] = str(work / "locks")
        with virtual_places(work / "lab", BOARDS, args.stage_delay) as places:
            labs = {
                "labgrid": places.write_lab(_mkdir(work / "labgrid"), through_labgrid=True),
                "direct": places.write_lab(_mkdir(work / "direct"), through_labgrid=False),
            }
            runs: dict[str, tuple[Path, tuple[str, ...]]] = {
                "labgrid": (labs["labgrid"], ("-j", "4")),
                "direct": (labs["direct"], ("-j", "4")),
                "single": (labs["direct"], ("-j", "1", "--board", BOARDS[0])),
            }
            times: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.rounds):
                for name, (lab, extra) in runs.items():
                    times[name].append(timed_run(lab, work / name / "results", *extra))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    vs_direct = medians["labgrid"] / medians["direct"]
    vs_single = medians["labgrid"] / medians["single"]
    print(f"stage delay {args.stage_delay:g} s, {len(BOARDS)} boards, {args.rounds} rounds")
    for name, ts in times.items():
        print(f"  {name:8s} median {medians[name]:6.2f} s  ({', '.join(f'{t:.2f}' for t in ts)})")
    print(f"  labgrid / direct          = {vs_direct:.2f} (target <= {TARGET})")
    print(f"  labgrid / (1/4 of 1 board x all cases) = {vs_single:.2f} (target <= {TARGET})")
    return 0 if max(vs_direct, vs_single) <= TARGET else 1


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


if __name__ == "__main__":
    sys.exit(main())
