"""``hil console BOARD``: an interactive terminal on a board's console, captured like any run
(raw bytes and timestamped lines under the results directory). Ctrl-] quits. Output is made
inert for the terminal unless ``--raw`` is given."""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import termios
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hil.commands.common import add_lab_option, lab_from
from hil.console import Console, ConsoleChunk
from hil.errors import UsageError
from hil.results import new_run_id
from hil.session import BoardSession
from hil.terminal import neutralise

QUIT = b"\x1d"  # Ctrl-], as in telnet and miniterm


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("console", help="interactive, logged terminal on a board console")
    parser.add_argument("board")
    add_lab_option(parser)
    parser.add_argument("--console", help="which console (default: the board's first)")
    parser.add_argument("--raw", action="store_true", help="pass escape sequences through")
    parser.add_argument("--results", type=Path, help="where the capture goes (default: lab's)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    lab = lab_from(args)
    board = lab.board(args.board)
    out_dir = (args.results or lab.results_dir) / f"console-{new_run_id()}"
    with BoardSession(board, out_dir / ".board") as session:
        name = args.console or next(iter(session.consoles))
        if name not in session.consoles:
            raise UsageError(f"board {board.name} has no console {name!r}")
        console = Console(name, session.consoles[name], out_dir)

        def show(chunk: ConsoleChunk) -> None:
            text = chunk.text if args.raw else neutralise(chunk.text)
            sys.stdout.write(text)
            sys.stdout.flush()

        console.subscribe(on_chunk=show)
        print(f"{board.name}:{name} - Ctrl-] quits; capture in {out_dir}", file=sys.stderr)
        with console, _raw_terminal():
            _pump_stdin(console)
    return 0


def _pump_stdin(console: Console) -> None:
    fd = sys.stdin.fileno()
    while console.lost is None:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        data = os.read(fd, 1024)
        if not data or QUIT in data:
            console.write(data.split(QUIT)[0])
            return
        console.write(data)


@contextlib.contextmanager
def _raw_terminal() -> Iterator[None]:
    if not sys.stdin.isatty():
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
