"""``hil triage LOG... [--json]``: what each captured console log says the firmware did.
Exit 0 when every log is clean, 1 when one shows a violation, 2 when one could not be read,
3 when one holds no evidence (no Xen boot that reached FF-A init)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TextIO

from hil.commands.common import add_command, exit_codes
from hil.errors import ExitCode
from hil.terminal import escape
from hil.triage import Boot, Triage, Verdict, boot_json, triage_file, triage_stream

STDIN = "-"
SHOWN_BOOTS = 20  # boots with violations the table details; --json has them all


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "triage",
        "summarise FF-A behaviour in captured console logs",
        "Read captured Xen console logs (a hil capture, a nightly's, one pasted in a bug report)\n"
        "and say what the firmware did: versions, dropped SP ids, FF-A failures, Xen crashes,\n"
        "the Xen profile the log matches, and each violation with its line. The first line for\n"
        "each log is its verdict: clean, violation, or no evidence.",
        exit_codes(
            "0  every log is clean: FF-A came up in some boot and no boot shows a violation",
            "1  a log shows a violation (dropped SP, FF-A failure, Xen panic/BUG/ASSERT, dom0 not\n"
            "     created)",
            "2  a log could not be read",
            "3  a log holds no evidence: no boot's FF-A init finished (empty, truncated,\n"
            "     compressed or the wrong file)",
        ),
    )
    parser.add_argument("logs", nargs="+", metavar="LOG", help=f"console log, {STDIN} for stdin")
    parser.add_argument("--json", action="store_true", help="one JSON object per log, streamed")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="say on stderr how lines are found: compiled, or pure Python and why",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    verdicts: list[Verdict] = []
    unreadable = False
    written = 0
    several = len(args.logs) > 1
    if args.verbose:
        from hil.triage import compiled

        print(f"hil triage: line finder: {escape(compiled.describe())}", file=sys.stderr)
    if args.json and several:
        out.write("[")
    for name in args.logs:
        try:
            stream = sys.stdin.buffer if name == STDIN else open(name, "rb")  # noqa: SIM115
        except OSError as exc:
            unreadable = True
            _cannot_read(name, exc)
            continue
        try:
            if args.json:
                out.write(", " if written else "")
                verdicts.append(_write_json(stream, name, out))
            else:
                verdicts.append(_write_table(stream, name, out))
            written += 1
        except BrokenPipeError:
            raise  # the reader went away (| head): hil.cli ends quietly
        except OSError as exc:
            unreadable = True
            _cannot_read(name, exc)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
    if args.json:
        out.write("]\n" if several else "\n" if written else "")
    if unreadable:
        return ExitCode.USAGE
    if Verdict.VIOLATION in verdicts:
        return ExitCode.CHECK_FAILED
    if Verdict.NO_EVIDENCE in verdicts:
        return ExitCode.INFRA
    return ExitCode.OK


def _cannot_read(name: str, exc: OSError) -> None:
    reason = exc.strerror or str(exc)
    print(f"hil triage: error: cannot read {escape(name)}: {reason}", file=sys.stderr)


def _triage(
    stream: IO[bytes],
    name: str,
    sink: Callable[[Boot], None],
    rendered: Callable[[str, int], None] | None = None,
) -> Triage:
    if stream is sys.stdin.buffer or not Path(name).is_file():
        return triage_stream(stream, name, sink, rendered)  # type: ignore[arg-type]
    return triage_file(Path(name), name, sink, rendered=rendered)


def _write_json(stream: IO[bytes], name: str, out: TextIO) -> Verdict:
    """One object, its boots written as they are read: ``{"file", "boots": [...], "verdict",
    "reason", "boot_count", then the last boot's fields}``."""
    out.write(f'{{"file": {json.dumps(name)}, "boots": [')
    count = 0

    def write(boot: Boot) -> None:
        rendered(boot_json(boot), 1)

    def rendered(text: str, boots: int) -> None:
        nonlocal count
        out.write((", " if count else "") + text)
        count += boots

    result = _triage(stream, name, write, rendered)
    summary: dict[str, Any] = {
        "verdict": result.verdict.value,
        "reason": result.no_evidence_reason or None,
        "boot_count": count,
    }
    if result.last is not None:
        last = result.last.to_json()
        del last["first_line"]
        summary.update(last)
    out.write("], " + json.dumps(summary)[1:])
    return result.verdict


def _write_table(stream: IO[bytes], name: str, out: TextIO) -> Verdict:
    """The verdict first, then each boot with a violation (up to SHOWN_BOOTS) and the last."""
    shown: list[tuple[int, Boot]] = []
    count = 0

    def keep(boot: Boot) -> None:
        nonlocal count
        count += 1
        if boot.violations and len(shown) < SHOWN_BOOTS:
            shown.append((count, boot))

    result = _triage(stream, name, keep)
    out.write(f"{escape(name)}: {_headline(result, count)}\n")
    if result.last is not None and (not shown or shown[-1][0] != count):
        shown.append((count, result.last))
    if result.verdict is Verdict.NO_EVIDENCE and not result.xen_boots:
        return result.verdict
    for index, boot in shown:
        if count > 1:
            out.write(f"  boot {index} of {count} (from line {boot.first_line})\n")
        for label, value in _boot_rows(boot):
            out.write(f"    {label:<16} {escape(value)}\n")
        for violation in boot.violations:
            where = f"line {violation.line}"
            out.write(f"      {where:<12} {violation.kind:<22} {escape(violation.text)}\n")
    hidden = result.violations - sum(1 for _, b in shown if b.violations)
    if hidden > 0:
        out.write(f"  ... and {hidden} more boot(s) with findings: see --json\n")
    return result.verdict


def _headline(result: Triage, boots: int) -> str:
    match result.verdict:
        case Verdict.VIOLATION:
            violated = result.violations - result.unreadable_boots
            return f"violation in {violated} of {boots} boot(s)"
        case Verdict.NO_EVIDENCE:
            return f"no evidence: {result.no_evidence_reason}"
    return f"clean: FF-A came up in {result.ffa_up_boots} of {boots} boot(s), no violation"


def _yes_no(value: bool | None) -> str:
    return "no FF-A lines" if value is None else "yes" if value else "no"


def _boot_rows(boot: Boot) -> Iterator[tuple[str, str]]:
    yield "Xen version", boot.xen_version or "-"
    yield "FF-A mediator", boot.mediator_version or "-"
    yield "FF-A firmware", boot.firmware_version or "-"
    yield "FF-A enabled", _yes_no(boot.ffa_enabled)
    yield "Dropped SP ids", ", ".join(f"0x{i:04x}" for i in boot.dropped_sp_ids) or "none"
    yield "SP cache failed", _yes_no(boot.cache_failed)
    conflict = boot.profile_conflict
    yield "Profile", f"{boot.profile}: {conflict}" if conflict else boot.profile
    yield "Findings", str(len(boot.violations))
