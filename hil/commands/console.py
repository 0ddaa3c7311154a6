"""``hil console BOARD``: an interactive terminal on a board's console, like ``labgrid-client
console``, captured like any run (raw bytes and timestamped lines under the results directory).

A board hil launches (a virtual board, a QEMU board) does not exist until hil starts it, so the
console starts it: it deploys a scenario's bundle (default all-secure) and powers it on, with
every console of the board captured. Any other board is attached to as it is, never
power-cycled. Keys go to the board as typed (Ctrl-C too); Ctrl-] quits."""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import termios
import threading
import tty
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from hil.boards.platform import bundle_for_board
from hil.commands.common import (
    INFRA_EXIT,
    USAGE_EXIT,
    add_command,
    add_lab_option,
    exit_codes,
    lab_from,
)
from hil.config import display_path
from hil.console import Console, ConsoleChunk
from hil.errors import ExitCode, UsageError
from hil.results import new_run_id
from hil.scenario import SCENARIO_DIR, load_scenarios
from hil.session import BoardSession
from hil.terminal import interactive

QUIT = b"\x1d"  # Ctrl-], as in telnet, miniterm and labgrid-client console
DEFAULT_SCENARIO = "all-secure"


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "console",
        "interactive, logged terminal on a board console",
        "An interactive terminal on one console of BOARD, every byte captured under the\n"
        "results directory. A board hil launches (virtual, QEMU) is started first with a\n"
        "scenario's firmware; any other board is attached to as it is. Ctrl-] quits.\n"
        "Escape sequences from the board are dropped unless --raw is given.",
        exit_codes(
            "0  you quit with Ctrl-]",
            USAGE_EXIT,
            INFRA_EXIT + "; or the console went away",
        ),
    )
    parser.add_argument("board")
    add_lab_option(parser)
    parser.add_argument("--console", help="which console (default: the board's first)")
    parser.add_argument("--raw", action="store_true", help="pass escape sequences through")
    parser.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        help=f"what a board hil launches boots (default: {DEFAULT_SCENARIO})",
    )
    parser.add_argument("--scenarios-dir", type=Path, default=SCENARIO_DIR, metavar="DIR")
    parser.add_argument(
        "--results", type=Path, metavar="DIR", help="where the capture goes (default: lab's)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    lab = lab_from(args)
    board = lab.board(args.board)
    out_dir = (args.results or lab.results_dir) / f"console-{new_run_id()}"
    with BoardSession(board, out_dir / ".board") as session:
        name = args.console or next(iter(session.consoles))
        if name not in session.consoles:
            raise UsageError(
                f"board '{board.name}' has no console {name!r} "
                f"(consoles: {', '.join(session.consoles)})"
            )
        launched = session.launched is not None
        if launched:
            (scenario,) = load_scenarios(args.scenarios_dir, [args.scenario])
            bundle = bundle_for_board(scenario, board, out_dir / "bundle")
            session.power.power_off()
            session.deployer.deploy(bundle.directory)
        # Every console of a launched board is captured: QEMU, for one, waits for a client on
        # each UART before it runs, and what the others print is evidence too.
        names = list(session.consoles) if launched else [name]
        consoles = {n: Console(n, session.consoles[n], out_dir) for n in names}
        screen = Screen(sys.stdout, raw=args.raw)
        consoles[name].subscribe(on_chunk=screen.show)
        where = f"capture in {display_path(out_dir)}"
        # A board that exists only once powered (QEMU) has no console to connect to yet.
        connect_now = session.launched is None or not session.launched.consoles_need_power
        # The terminal goes raw before the banner and before anything the board says is shown:
        # a key typed after either (a reply to the board's prompt, Ctrl-C for the board) reaches
        # the board. Typed earlier, the terminal's line discipline would echo it, or turn Ctrl-C
        # into a SIGINT that stops hil instead.
        with raw_terminal(sys.stdin), screen, ExitStack() as stack:
            print(f"{board.name}:{name} - Ctrl-] quits; {where}", file=sys.stderr, flush=True)
            for console in consoles.values():
                console.open(connect_now=connect_now)
                stack.callback(console.close)
            if launched:
                session.power.power_on()
            quit_ = pump_keys(consoles[name])
        lost = consoles[name].lost
        if not quit_:
            print(f"hil: {lost or f'console {name!r} went away'}; {where}", file=sys.stderr)
            return ExitCode.INFRA
    return ExitCode.OK


class Screen:
    """Shows one console's output on a terminal. Unless ``raw``, escape sequences and controls
    are dropped, but carriage returns and backspaces stay: a board's CRLF line ends and its
    shell's line editing must look as they do on a serial terminal. On leaving, the cursor goes
    back to column 0 so the shell prompt does not land after the board's last partial line."""

    def __init__(self, stream: TextIO, raw: bool = False) -> None:
        self._stream, self._raw = stream, raw
        self._lock = threading.Lock()
        self._at_line_start = True

    def show(self, chunk: ConsoleChunk) -> None:
        text = chunk.text if self._raw else interactive(chunk.text)
        if not text:
            return
        with self._lock:
            self._stream.write(text)
            self._stream.flush()
            self._at_line_start = text.endswith("\n")

    def __enter__(self) -> Screen:
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if not self._at_line_start:
                self._stream.write("\r\n")
                self._at_line_start = True
            self._stream.flush()


def pump_keys(console: Console) -> bool:
    """Send what is typed to ``console`` until Ctrl-] (True) or the console is gone (False).
    Input that ends (not a terminal, end of file) stops the session like Ctrl-]."""
    fd = sys.stdin.fileno()
    while console.lost is None:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        data = os.read(fd, 1024)
        keys, quit_, _ = data.partition(QUIT)
        if keys:
            console.write(keys)
        if quit_ or not data:
            return True
    return False


@contextlib.contextmanager
def raw_terminal(stream: TextIO) -> Iterator[None]:
    """Keys reach the board one by one, unechoed and uninterpreted (Ctrl-C included), as with
    any serial terminal. Output processing stays on: a bare newline from a board that does not
    send CRLF still starts its line at column 0 (CRLF is unaffected)."""
    if not stream.isatty():
        yield
        return
    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)  # keys typed ahead are kept for the board, not flushed
        mode = termios.tcgetattr(fd)
        mode[1] |= termios.OPOST | termios.ONLCR  # oflag
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
