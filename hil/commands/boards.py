"""``hil boards``: the lab's boards, how they are reached, and whether one is in use."""

from __future__ import annotations

import argparse
from typing import Any

from hil.commands.common import add_lab_option, lab_from
from hil.lock import BoardBusy, BoardLock
from hil.session import launches_virtual_board


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("boards", help="list the lab's boards and their state")
    add_lab_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    lab = lab_from(args)
    rows = [("BOARD", "TYPE", "PROFILE", "DEFAULT", "STATE", "REACHED THROUGH")]
    for board in lab.boards.values():
        if launches_virtual_board(board):
            reach = "virtual board launched by hil"
        elif board.place:
            reach = f"labgrid place {board.place}"
        else:
            reach = ", ".join(f"{n}={u}" for n, u in board.consoles.items())
        rows.append(
            (
                board.name,
                board.type.name,
                board.xen_profile,
                "yes" if board.default else "",
                _state(board.name),
                reach,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def _state(board: str) -> str:
    try:
        with BoardLock(board):
            return "free"
    except BoardBusy as exc:
        return str(exc).removeprefix(f"board {board} is ")
