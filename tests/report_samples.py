"""A realistic run for the report tests (and for looking at report.html by eye): three boards,
three scenarios, each verdict, hostile console text, console logs on disk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hil.results import (
    EVENTS_ROLE,
    BootOutcome,
    BootRecord,
    CaseResult,
    RunResult,
    StageStatus,
    StageTiming,
    Verdict,
    console_role,
)
from hil.xen.messages import message

HOSTILE = '<script>alert(1)</script> "><img src=x onerror=alert(1)> \x1b]0;pwned\x07\x1b[31mred'
T0 = datetime(2026, 11, 24, 2, 0, 0, tzinfo=UTC)
STAGES = (
    ("uart1", "bl1", 0.0, 0.4),
    ("uart1", "bl2", 0.4, 1.9),
    ("uart1", "bl31", 1.9, 2.6),
    ("uart1", "spmc", 2.6, 5.1),
    ("uart0", "xen", 5.1, 9.8),
    ("uart0", "ffa-init", 9.8, 10.3),
    ("uart0", "dom0-probe", 10.3, 17.2),
)


def stages(stop_at: str | None = None, status: StageStatus = StageStatus.TIMEOUT) -> list:
    """The boot stages, ok up to ``stop_at`` which ends with ``status``, later ones not reached."""
    out, stopped = [], False
    for console, name, start, end in STAGES:
        if stopped:
            out.append(StageTiming(name, console, None, None, StageStatus.NOT_REACHED))
        elif name == stop_at:
            out.append(StageTiming(name, console, start, None, status))
            stopped = True
        else:
            out.append(StageTiming(name, console, start, end, StageStatus.OK))
    return out


def artifacts(board: str, scenario: str) -> dict[str, str]:
    base = f"{board}/{scenario}"
    files = {EVENTS_ROLE: f"{base}/events.json"}
    for console in ("uart0", "uart1"):
        files[console_role(console, "raw")] = f"{base}/{console}.raw"
        files[console_role(console, "log")] = f"{base}/{console}.log"
    return files


def sample_run(run_dir: Path) -> RunResult:
    """The run, with its console logs written under ``run_dir``."""
    dropped = message("sp_unusable").render(id=0x42)
    convention = message("id_convention").render()
    cases = []
    boards = ("fvp-base-revc", "juno-r2", "qemu-virt")
    scenarios = ("ffa-v1.1-basic", "bit15-ids", "desc-v1.3-size")
    for b, board in enumerate(boards):
        for s, scenario in enumerate(scenarios):
            started = T0 + timedelta(seconds=60 * s + 7 * b)
            kwargs: dict = {
                "board": board,
                "scenario": scenario,
                "started": started,
                "duration_s": 17.9,
                "verdict": Verdict.PASS,
                "stages": stages(),
                "artifacts": artifacts(board, scenario),
                "provenance": {
                    "bl31.bin": "sha256:" + "3f" * 32,
                    "xen": "sha256:" + "a0" * 32,
                },
                "expected_profile": "xen-4.22",
                "board_profile": "xen-4.22",
            }
            if (board, scenario) == ("juno-r2", "bit15-ids"):
                kwargs |= {
                    "verdict": Verdict.FAIL,
                    "message": "2 console lines differ; probe saw 3 partitions, expected 2",
                    "diff": [
                        "@@ xen console @@",
                        f" (XEN) {convention}",
                        f"-(XEN) {dropped}",
                        "+(XEN) " + HOSTILE,
                        "@@ probe: FFA_PARTITION_INFO_GET nil count @@",
                        "-count=2",
                        "+count=3",
                    ],
                }
            elif (board, scenario) == ("qemu-virt", "desc-v1.3-size"):
                kwargs |= {
                    "verdict": Verdict.INFRA_ERROR,
                    "message": "no 'xen' marker within 120 s on uart0 after 3 power cycles",
                    "stages": stages("xen"),
                    "duration_s": 131.0,
                    "attempts": 3,
                    "boots": [
                        BootRecord(n, start, start + 41.0, BootOutcome.INFRA_ERROR, "xen", "stall")
                        for n, start in ((1, 0.2), (2, 44.3), (3, 89.9))
                    ],
                }
            elif board == "qemu-virt" and scenario == "bit15-ids":
                kwargs |= {
                    "verdict": Verdict.FAIL,
                    "message": "Xen panicked during FF-A init",
                    "stages": stages("ffa-init", StageStatus.PANIC),
                    "diff": ["-(XEN) ARM FF-A Firmware version 1.2", "+(XEN) Xen BUG at ffa.c"],
                    "duration_s": 11.4,
                }
            cases.append(CaseResult(**kwargs))
            for console in ("uart0", "uart1"):
                log = run_dir / board / scenario / f"{console}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                lines = [f"[{i * 0.5:8.3f}] {console} line {i}" for i in range(40)]
                lines.append(f"[  20.000] {HOSTILE}\x00\x07")
                log.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    cases.append(
        CaseResult(
            board="juno-r2",
            scenario="vm-to-vm",
            started=T0 + timedelta(minutes=5),
            duration_s=0,
            attempts=0,
            verdict=Verdict.NOT_RUN,
            message="run interrupted before this case",
        )
    )
    return RunResult(
        run_id="20261124T020000Z-4b1f0c",
        lab_file="labs/nightly.toml",
        started=T0,
        finished=T0 + timedelta(minutes=6, seconds=12),
        cases=cases,
        interrupted=True,
        provenance={"hil": "0.1.0", "host": "lab-ctl-01", "lab.toml": "sha256:" + "77" * 32},
    )
