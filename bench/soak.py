"""``python -m bench.soak [--iterations N] [--quick] [--seed S]``: the whole scenario matrix on
four virtual boards (-j 4, no stage delay), each board with a random fault per iteration (seeded,
recorded), N times, in this process (hil.runner.Runner), so the controller's own resources can be
watched. Reports verdict accuracy (expected verdict for the injected fault vs given), bytes lost
(each board's sent-log vs its captures, concatenated in run order: must be 0), and peak RSS, file
descriptors and threads after the first iteration and at the end (must not grow).

Exit 0 when every verdict was right, no byte was lost and nothing grew; 1 otherwise."""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hil.lab import load_lab
from hil.progress import ProgressPrinter
from hil.runner import Runner, RunRequest
from hil.scenario import load_scenarios
from hil.sim.boot_script import CONSOLES
from tests.reliability.support import board_table
from tests.reliability.support import write_lab as support_write_lab

BOARDS = ("soak0", "soak1", "soak2", "soak3")
BOOT_ATTEMPTS = 2
QUICK_ITERATIONS = 3


@dataclass(frozen=True)
class Injected:
    """One board's fault for one iteration and the verdict each case must get for it."""

    name: str
    faults: dict[str, Any]
    first: str = "pass"  # the first case's verdict (the fault fires in the board's first boots)
    rest: str = "pass"  # every later case's


def pick_fault(rng: random.Random) -> Injected:
    """A fault the lab can throw at a board, with the verdict a correct controller gives."""
    stage = rng.choice(("bl1", "bl2", "bl31", "spmc", "xen", "ffa", "dom0", "probe"))
    line = rng.randrange(0, 6)
    seed = rng.randrange(1 << 16)
    catalogue = [
        Injected("none", {}),
        # Once: the retry (a second boot) passes.
        Injected("stall-once", {"stall": {"stage": stage, "boots": 1}}),
        # Every boot of the first case: both attempts stall, an infra error; later cases pass.
        Injected(
            "stall-first-case", {"stall": {"stage": stage, "boots": BOOT_ATTEMPTS}}, "infra_error"
        ),
        # Once: a garbage line among Xen's output may be a damaged line of Xen's, so that boot
        # is not judged; the retry passes.
        Injected(
            "garbage",
            {
                "garbage": {
                    "stage": rng.choice(("bl31", "dom0", "probe")),
                    "line": line,
                    "pattern": rng.choice(("random", "nul", "ff", "utf8")),
                    "size": rng.randrange(1, 4096),
                    "seed": seed,
                    "boots": 1,
                }
            },
        ),
        # Held: the board waits for the controller to reconnect, so nothing is lost.
        Injected(
            "disconnect-held",
            {"disconnect": {"stage": stage, "line": line, "hold": True, "boots": 1}},
        ),
        Injected("reboot-in-probe", {"reboot": {"stage": "probe", "line": line}}),
        Injected("burst", {"burst": {"stage": stage, "size": 1 << 20, "seed": seed, "boots": 1}}),
        Injected(
            "panic",
            {"text": {"stage": "dom0", "text": "(XEN) Panic on CPU 0:\r\n", "boots": 1}},
            "fail",
        ),
        # Once: damaged evidence is not judged, the retry passes.
        Injected(
            "damaged-probe-line",
            {
                "text": {
                    "stage": "probe",
                    "line": line + 1,
                    "text": "HILPROBE answer\r\n",
                    "boots": 1,
                }
            },
        ),
        Injected("corrupt-once", {"corrupt": {"stage": "ffa", "line": line, "boots": 1}}),
    ]
    return rng.choice(catalogue)


@dataclass
class Resources:
    rss_peak_kib: int  # high-water mark: rises with the heaviest case so far (a burst)
    rss_kib: int  # now: what a leak would make grow
    fds: int
    threads: int

    @classmethod
    def now(cls) -> Resources:
        status = Path("/proc/self/status").read_text().splitlines()
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        return cls(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            rss,
            len(os.listdir("/proc/self/fd")),
            threading.active_count(),
        )


@dataclass
class Report:
    iterations: int = 0
    cases: int = 0
    right: int = 0
    bytes_sent: int = 0
    bytes_lost: int = 0
    bytes_outside_captures: int = 0
    losses: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    faults: list[dict[str, str]] = field(default_factory=list)  # per iteration: board -> fault
    after_first: Resources | None = None
    at_end: Resources | None = None
    seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.right / self.cases if self.cases else 0.0

    @property
    def grew(self) -> bool:
        first, end = self.after_first, self.at_end
        assert first is not None and end is not None
        return end.fds > first.fds or end.threads > first.threads

    @property
    def ok(self) -> bool:
        return self.right == self.cases and self.bytes_lost == 0 and not self.grew


def write_lab(directory: Path, faults: dict[str, dict[str, Any]]) -> Path:
    """One launched virtual board per name, each with its own faults and half-second stages."""
    tables = [board_table(name, fault) for name, fault in faults.items()]
    return support_write_lab(directory, boards=(), boot_attempts=BOOT_ATTEMPTS, tables=tables)


def lost_bytes(board_dir: Path, board: str, scenarios: Sequence[str]) -> tuple[int, int, int]:
    """(bytes sent, bytes lost, bytes sent outside any capture) over the board's consoles.

    Each case's capture must be an exact slice of what the board sent, in case order: a capture
    that is not (a byte missing, changed or moved inside it) counts whole as lost. Bytes between
    the slices were sent while no case was capturing (before a case opened its consoles, or after
    it ended: e.g. a board that keeps booting after a panic the controller already acted on);
    they are reported apart, not as lost."""
    sent_total = lost = outside = 0
    for console in CONSOLES:
        sent = (board_dir / ".board" / f"{board}.{console}.sent").read_bytes()
        sent_total += len(sent)
        cursor = 0
        for scenario in scenarios:
            raw = board_dir / scenario / f"{console}.raw"
            captured = raw.read_bytes() if raw.exists() else b""
            at = sent.find(captured, cursor) if captured else cursor
            if at < 0:
                lost += len(captured)
                continue
            outside += at - cursor
            cursor = at + len(captured)
        outside += len(sent) - cursor
    return sent_total, lost, outside


def iteration(number: int, rng: random.Random, work: Path, report: Report) -> None:
    injected = {board: pick_fault(rng) for board in BOARDS}
    report.faults.append({b: json.dumps(i.faults) for b, i in injected.items()})
    directory = work / f"iter{number:04d}"
    directory.mkdir()
    lab = load_lab(write_lab(directory, {b: i.faults for b, i in injected.items()}))
    scenarios = load_scenarios()
    request = RunRequest(
        boards=lab.select(), scenarios=scenarios, results_dir=directory / "results", jobs=4
    )
    runner = Runner(lab, request, ProgressPrinter(io.StringIO()))
    run = runner.run()
    names = [s.name for s in scenarios]
    for case in run.cases:
        fault = injected[case.board]
        want = fault.first if case.scenario == names[0] else fault.rest
        report.cases += 1
        if case.verdict.value == want:
            report.right += 1
        else:
            report.wrong.append(
                f"iteration {number} {case.board}/{case.scenario}: {fault.name} "
                f"{json.dumps(fault.faults)}: expected {want}, got {case.verdict.value}: "
                f"{case.message}"
            )
    for board in BOARDS:
        sent, lost, outside = lost_bytes(runner.run_dir / board, board, names)
        report.bytes_sent += sent
        report.bytes_lost += lost
        report.bytes_outside_captures += outside
        if lost:
            report.losses.append(
                f"iteration {number} {board}: {injected[board].name} "
                f"{json.dumps(injected[board].faults)}: {lost} of {sent} bytes not captured"
            )
    report.iterations += 1


def soak(iterations: int, seed: int) -> Report:
    report = Report()
    rng = random.Random(seed)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hil-soak-") as name:
        work = Path(name)
        os.environ["HIL_LOCK_DIR"] = str(work / "locks")
        for number in range(iterations):
            iteration(number, rng, work, report)
            if number == 0:
                report.after_first = Resources.now()
        report.at_end = Resources.now()
    report.seconds = time.monotonic() - t0
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ITERATIONS} iterations")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    iterations = QUICK_ITERATIONS if args.quick else args.iterations
    report = soak(iterations, args.seed)
    first, end = report.after_first, report.at_end
    assert first is not None and end is not None
    print(f"iterations       {report.iterations} ({report.seconds:.0f} s, seed {args.seed})")
    print(f"cases            {report.cases}")
    print(f"verdict accuracy {report.right}/{report.cases} ({report.accuracy:.2%})")
    print(f"bytes lost       {report.bytes_lost} of {report.bytes_sent} sent")
    print(f"not captured     {report.bytes_outside_captures} (sent while no case was capturing)")
    print(f"peak RSS         {first.rss_peak_kib} KiB after iteration 1, {end.rss_peak_kib} at end")
    print(f"current RSS      {first.rss_kib} KiB after iteration 1, {end.rss_kib} at end")
    print(f"open fds         {first.fds} after iteration 1, {end.fds} at end")
    print(f"threads          {first.threads} after iteration 1, {end.threads} at end")
    for line in report.losses[:20]:
        print(f"  lost: {line}")
    for line in report.wrong[:20]:
        print(f"WRONG: {line}")
    if args.json:
        document = {**asdict(report), "accuracy": report.accuracy, "ok": report.ok}
        args.json.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
