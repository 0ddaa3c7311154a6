"""Options, help layout and loading shared by the commands."""

from __future__ import annotations

import argparse
import io
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from hil.errors import ExitCode

if TYPE_CHECKING:  # loading a lab pulls in every back-end: hil triage needs none of them
    from hil.lab import Lab

DEFAULT_LAB = Path("lab.toml")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        # argparse sizes the column without the extra indent it then gives each subcommand, so
        # the longest command name wraps; count the indent.
        for sub in getattr(action, "_get_subactions", list)():
            length = len(self._format_action_invocation(sub)) + self._current_indent
            self._action_max_length = max(self._action_max_length, length + self._indent_increment)


class HelpParser(argparse.ArgumentParser):
    """Help text laid out as written (paragraphs, tables of exit codes); a usage error is one
    line naming the command, exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def exit_codes(*lines: str, width: int = 92) -> str:
    """An ``exit codes:`` epilog; each line is ``"N  meaning"`` (a line starting with a space
    continues the one before), wrapped to ``width`` with the meaning's continuation lines under
    its first word."""
    entries: list[str] = []
    for line in lines:
        if line[:1].isspace() and entries:  # written as a continuation of the previous one
            entries[-1] += " " + line
        else:
            entries.append(line)
    wrapped = []
    for entry in entries:
        code, _, meaning = entry.partition("  ")
        text = f"{code}  {' '.join(meaning.split())}"
        wrapped.append(textwrap.fill(text, width, initial_indent="  ", subsequent_indent="     "))
    return "exit codes:\n" + "\n".join(wrapped)


# The lines every lab command shares.
USAGE_EXIT = "2  usage or config error: one line naming the file, board or field"
INFRA_EXIT = "3  infrastructure: the board did not boot, a console was lost, the board is busy"


def add_command(sub: Any, name: str, summary: str, description: str, epilog: str) -> Any:
    """A subcommand parser: ``summary`` in ``hil --help``, ``description`` and ``epilog`` in
    its own help."""
    return sub.add_parser(name, help=summary, description=description, epilog=epilog)


def add_lab_option(parser: Any) -> None:
    parser.add_argument(
        "--lab",
        type=Path,
        default=Path(os.environ.get("HIL_LAB", DEFAULT_LAB)),
        help="lab file (default: $HIL_LAB or ./lab.toml)",
    )


def lab_from(args: argparse.Namespace) -> Lab:
    from hil.lab import load_lab

    return load_lab(args.lab)


class ReaderMayLeave(io.TextIOBase):
    """A command's output whose reader may go away (``hil run | head``). The work goes on, and
    its verdicts, reports and exit code do not depend on who reads: once the pipe is broken the
    output goes to /dev/null."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return self._stream.isatty()

    def write(self, text: str) -> int:
        try:
            self._stream.write(text)
        except BrokenPipeError:
            self._reader_gone()
        return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        # What the stream still buffers, and the interpreter's flush at exit, go nowhere.
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, self._stream.fileno())
        finally:
            os.close(null)
