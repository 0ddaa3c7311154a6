"""``hil triage LOG... [--json]``: what each captured console log says the firmware did.
Exit 0 when no log shows a violation, 1 when one does, 2 when a log could not be read."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from hil.commands.common import add_command, exit_codes
from hil.errors import ExitCode
from hil.terminal import escape
from hil.triage import Boot, Triage, triage_file, triage_stream

STDIN = "-"


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "triage",
        "summarise FF-A behaviour in captured console logs",
        "Read captured Xen console logs (a hil capture, a nightly's, one pasted in a bug report)\n"
        "and say what the firmware did: versions, dropped SP ids, cache failures, the Xen\n"
        "profile the log matches, and each violation with its line.",
        exit_codes(
            "0  no log shows a violation",
            "1  a log shows a violation (dropped SP, cache failure, bad descriptors, ...)",
            "2  a log could not be read",
        ),
    )
    parser.add_argument("logs", nargs="+", metavar="LOG", help=f"console log, {STDIN} for stdin")
    parser.add_argument("--json", action="store_true", help="one JSON object per log")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    results: list[Triage] = []
    unreadable = False
    for name in args.logs:
        try:
            if name == STDIN:
                results.append(triage_stream(sys.stdin.buffer, name))
            else:
                results.append(triage_file(Path(name), name))
        except OSError as exc:
            unreadable = True
            reason = exc.strerror or str(exc)
            print(f"hil triage: error: cannot read {escape(name)}: {reason}", file=sys.stderr)
    if args.json:
        objects = [r.to_json() for r in results]
        if len(args.logs) > 1:
            print(json.dumps(objects))
        elif objects:
            print(json.dumps(objects[0]))
    else:
        for result in results:
            write_table(result, sys.stdout)
    if unreadable:
        return ExitCode.USAGE
    return ExitCode.CHECK_FAILED if any(r.has_violation for r in results) else ExitCode.OK


def _yes_no(value: bool | None) -> str:
    return "no FF-A lines" if value is None else "yes" if value else "no"


def _boot_rows(boot: Boot) -> Iterator[tuple[str, str]]:
    yield "Xen version", boot.xen_version or "-"
    yield "FF-A mediator", boot.mediator_version or "-"
    yield "FF-A firmware", boot.firmware_version or "-"
    yield "FF-A enabled", _yes_no(boot.ffa_enabled)
    yield "Dropped SP ids", ", ".join(f"0x{i:04x}" for i in boot.dropped_sp_ids) or "none"
    yield "SP cache failed", _yes_no(boot.cache_failed)
    yield "Profile", boot.profile
    yield "Violations", str(len(boot.violations))


def write_table(result: Triage, out: TextIO) -> None:
    out.write(f"{escape(result.file)}\n")
    for index, boot in enumerate(result.boots, 1):
        if len(result.boots) > 1:
            out.write(f"  boot {index} (from line {boot.first_line})\n")
        for label, value in _boot_rows(boot):
            out.write(f"    {label:<16} {escape(value)}\n")
        for violation in boot.violations:
            where = f"line {violation.line}"
            out.write(f"      {where:<12} {violation.kind:<22} {escape(violation.text)}\n")
