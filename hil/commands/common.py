"""Options and loading shared by the commands that work on a lab."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hil.lab import Lab, load_lab

DEFAULT_LAB = Path("lab.toml")


def add_lab_option(parser: Any) -> None:
    parser.add_argument(
        "--lab",
        type=Path,
        default=Path(os.environ.get("HIL_LAB", DEFAULT_LAB)),
        help="lab file (default: $HIL_LAB or ./lab.toml)",
    )


def lab_from(args: argparse.Namespace) -> Lab:
    return load_lab(args.lab)
