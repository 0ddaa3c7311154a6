"""The ``hil`` command. Each subcommand lives in ``hil.commands.<name>`` and provides
``add_parser(subparsers)`` and ``run(args) -> int``; its help names its exit codes."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from hil import __version__
from hil.commands.common import HelpParser, ReaderMayLeave
from hil.errors import ExitCode, HilError, os_error_text
from hil.interrupts import terminate_as_interrupt

COMMANDS: tuple[str, ...] = ("run", "check", "console", "boards", "scenarios", "triage", "diff")
# Commands whose exit code is a verdict: when their reader goes away (hil check | head) they
# finish their work and exit with it, their output going nowhere; the others just end (exit 0).
VERDICT_COMMANDS = frozenset({"run", "check", "triage", "diff"})

DESCRIPTION = """\
Hardware-in-the-loop checks that the firmware a lab ships (TF-A + an SPMC + secure partitions)
and the Xen it ships (the FF-A mediator) agree on secure-partition IDs and the partition-info
cache. hil boots each board with crafted descriptor sets (scenarios), captures every console byte
and compares what Xen printed and what a dom0 probe was answered with an oracle for the board's
Xen profile."""

EPILOG = """\
typical use:
  hil boards                           the lab's boards, how each is reached, who holds it
  hil check virtual0                   boot one board once, stage by stage (bring-up)
  hil run                              every scenario on the lab's default boards (nightly)
  hil run --tag bit15 --board qemu0    a selection; hil scenarios lists names and tags
  hil triage results/latest/virtual0/one-non-secure/ns.raw
  hil diff --board qemu0 --base xen-4.22.0.tar.xz --head-patch fix.patch

Each command's help (hil COMMAND --help) says what its exit codes mean. The lab file is
./lab.toml unless --lab or $HIL_LAB says otherwise."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with ``command`` only that subcommand (the others' modules
    are not imported: a quick command such as ``hil triage`` starts in a fraction of the time)."""
    parser = HelpParser(prog="hil", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"hil {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, title="commands", metavar="COMMAND", parser_class=HelpParser
    )
    for name in (command,) if command in COMMANDS else COMMANDS:
        importlib.import_module(f"hil.commands.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    stdout = sys.stdout
    if args.command in VERDICT_COMMANDS:
        sys.stdout = ReaderMayLeave(stdout)
    try:
        with terminate_as_interrupt():
            return int(args.handler(args))
    except HilError as exc:
        print(f"hil: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM before a run could record anything (a run records its own).
        print("hil: interrupted", file=sys.stderr)
        return int(ExitCode.INFRA)
    except BrokenPipeError:
        # The reader went away (hil scenarios | head): not an error of hil's. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # The machine failed (a full disk, a directory that vanished or cannot be written):
        # infrastructure, whatever command was running.
        print(f"hil: error: {os_error_text(exc)}", file=sys.stderr)
        return int(ExitCode.INFRA)
    except Exception as exc:
        # A bug in hil: nothing was judged. Left to Python, it would end with status 1, which
        # a nightly reads as a failed check (hil run) or a violation (hil triage).
        traceback.print_exc()
        print(f"hil: internal error (a bug in hil, not a verdict): {exc!r}", file=sys.stderr)
        return int(ExitCode.INFRA)
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
