"""Benchmark: what the controller costs per case on real Xen.

One board of real-xen.toml (default ``xen-4.22``: Xen 4.22.0 that hil builds from ../shared/xen,
cached) runs every shipped scenario. Each case's time (bundle written -> verdict, as summary.json
records it) is split into the emulator's own boot, from QEMU's process start to the probe's end
line arriving on the console, and the rest, which is the controller's: the bundle, deploying it,
stopping the previous QEMU and starting this one, following the stages, parsing, comparing and
writing the results. QEMU's start is taken by a wrapper that stamps the time and execs the real
``qemu-system-aarch64`` in the same process. Target: the controller's share of the total case
time under 5%.

    python -m bench.realxen_bench [--board xen-4.22] [--rounds 1]

Prints the figures with the target; exits 0 when met, 1 when missed or a case did not pass, 3 when
the tools or ../shared/xen are missing (the message says how to get them)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hil.cli import main as hil
from hil.firmware import toolchain
from tests.labs import BOARDS_DIR, toml_value

REPO = Path(__file__).resolve().parents[1]
XEN_SOURCES = Path(os.environ.get("HIL_XEN_SOURCES") or REPO.parent / "shared" / "xen")
OVERHEAD_TARGET = 0.05
END_LINE = "HILPROBE end"
STAMPS = "HIL_BENCH_QEMU_STARTS"
# Stamps the process start, then becomes QEMU (same pid). A DTB dump is not a boot.
WRAPPER = """#!/bin/sh
case "$*" in *dumpdtb=*) ;; *) date +%s.%N >> "${STAMPS}" ;; esac
exec "{qemu}" "$@"
"""


@dataclass(frozen=True)
class Case:
    scenario: str
    seconds: float  # the case, as hil records it
    emulator: float  # QEMU's process start -> the probe's end line
    before: float  # case start -> QEMU's process start (bundle, deploy, power-cycle)


def lab_file(directory: Path, board: str) -> Path:
    with (REPO / "real-xen.toml").open("rb") as f:
        boards = {b["name"]: b for b in tomllib.load(f)["board"]}
    if board not in boards:
        raise SystemExit(f"bench: no board '{board}' in real-xen.toml ({', '.join(boards)})")
    table = {**boards[board], "xen_src": str(XEN_SOURCES / Path(boards[board]["xen_src"]).name)}
    lines = [
        f"boards_dir = {toml_value(str(BOARDS_DIR))}",
        f"results_dir = {toml_value(str(directory / 'results'))}",
        "[[board]]",
        *(f"{key} = {toml_value(value)}" for key, value in table.items()),
    ]
    path = directory / "lab.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def end_line_time(ns_log: Path) -> float:
    """When the probe's end line arrived (the capture's own timestamp, epoch seconds)."""
    for line in ns_log.read_text("utf-8", "replace").splitlines():
        stamp, _, text = line.partition(" ns | ")
        if text.startswith(END_LINE):
            return datetime.fromisoformat(stamp).timestamp()
    raise SystemExit(f"bench: no '{END_LINE}' in {ns_log}")


def run_once(directory: Path, board: str) -> list[Case]:
    """Every scenario on ``board``, each case with the QEMU start that booted it."""
    directory.mkdir(parents=True)
    stamps = directory / "qemu-starts"
    os.environ[STAMPS] = str(stamps)
    lab = lab_file(directory, board)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = hil(["run", "--lab", str(lab)])
    run_dir = (directory / "results" / "latest").resolve()
    cases = json.loads((run_dir / "summary.json").read_text())["run"]["cases"]
    bad = [f"{c['scenario']}: {c['message']}" for c in cases if c["verdict"] != "pass"]
    if code != 0 or bad:
        raise SystemExit(f"bench: hil run exited {code}; not passed: {bad[:3]} (see {run_dir})")
    starts = sorted(float(s) for s in stamps.read_text().split())
    out = []
    for case in cases:
        begun = datetime.fromisoformat(case["started"]).timestamp()
        ended = begun + case["duration_s"]
        # The boot that counted: the last QEMU started within the case (one, unless retried).
        qemu = max(s for s in starts if begun <= s <= ended)
        end = end_line_time(run_dir / board / case["scenario"] / "ns.log")
        out.append(Case(case["scenario"], case["duration_s"], end - qemu, qemu - begun))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="xen-4.22", help="a board of real-xen.toml")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    missing = toolchain.missing()
    if missing:
        print(f"bench: missing {', '.join(missing)}: {toolchain.SETUP_HINT}", file=sys.stderr)
        return 3
    if not XEN_SOURCES.is_dir():
        print(f"bench: no Xen sources at {XEN_SOURCES} (HIL_XEN_SOURCES)", file=sys.stderr)
        return 3
    qemu = shutil.which("qemu-system-aarch64")
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="hil-realxen-bench-") as tmp:
        wrapper = Path(tmp) / "bin" / "qemu-system-aarch64"
        wrapper.parent.mkdir()
        wrapper.write_text(WRAPPER.replace("{STAMPS}", STAMPS).replace("{qemu}", str(qemu)))
        wrapper.chmod(0o755)
        os.environ["PATH"] = f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}"
        os.environ["HIL_LOCK_DIR"] = str(Path(tmp) / "locks")
        for n in range(args.rounds):
            cases += run_once(Path(tmp) / f"round{n}", args.board)
    total = sum(c.seconds for c in cases)
    emulator = sum(c.emulator for c in cases)
    overhead = [c.seconds - c.emulator for c in cases]
    before = statistics.median(c.before for c in cases)
    after = statistics.median(c.seconds - c.emulator - c.before for c in cases)
    share = (total - emulator) / total
    print(
        f"real Xen ({args.board}), {len(cases)} cases: {total:.1f} s of cases, emulator "
        f"(QEMU start -> '{END_LINE}') {emulator:.1f} s, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"controller overhead on real Xen: {share:.1%} of case time (median "
        f"{statistics.median(overhead) * 1000:.0f} ms, max {max(overhead) * 1000:.0f} ms per "
        f"case; median {before * 1000:.0f} ms before QEMU starts, {after * 1000:.0f} ms after "
        f"its end line), target < {OVERHEAD_TARGET:.0%}"
    )
    return 0 if share < OVERHEAD_TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
