"""``hil boards``: the lab's boards, how they are reached, and whether one is in use."""

from __future__ import annotations

import argparse
from typing import Any

from hil.boards.platform import launches
from hil.commands.common import USAGE_EXIT, add_command, add_lab_option, exit_codes, lab_from
from hil.guest import PROBE
from hil.lock import BoardBusy, BoardLock
from hil.terminal import columns


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "boards",
        "list the lab's boards, how each is reached and who holds it",
        "One line per board of the lab file: type, Xen profile, whether it is a default board,\n"
        "its tags, whether another hil process holds it, and how hil reaches it.",
        exit_codes("0  listed", USAGE_EXIT, "3  the board lock directory cannot be used"),
    )
    add_lab_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    lab = lab_from(args)
    rows = [("BOARD", "TYPE", "PROFILE", "DEFAULT", "TAGS", "STATE", "REACHED THROUGH")]
    for board in lab.boards.values():
        launched = launches(board)
        if launched is not None:
            reach = f"launched by hil ({launched})"
        elif board.place:
            reach = f"labgrid place {board.place}"
        else:
            reach = ", ".join(f"{n}={u}" for n, u in board.consoles.items())
            if board.power.kind == "emulator":
                reach = f"emulator launched by hil; {reach}"
        if board.guest != PROBE:
            reach = f"{reach}; dom0: {board.guest}"
        rows.append(
            (
                board.name,
                board.type.name,
                board.xen_profile,
                "yes" if board.default else "",
                ",".join(board.tags),
                _state(board.name),
                reach,
            )
        )
    for line in columns(rows):
        print(line)
    return 0


def _state(board: str) -> str:
    try:
        with BoardLock(board):
            return "free"
    except BoardBusy as exc:
        return str(exc).removeprefix(f"board {board} is ")
