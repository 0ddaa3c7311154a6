"""Xen's build configuration as hil reads it: ``.config`` files and the lab's extra Kconfig lines
(``xen_kconfig``). Pure: the build itself is hil.firmware.xen."""

from __future__ import annotations

import re
from collections.abc import Iterable

ASSIGNMENT = re.compile(r'CONFIG_[A-Za-z0-9_]+=(?:y|n|m|-?[0-9]+|0x[0-9a-fA-F]+|"[^"\n]*")')


def check_assignment(line: str) -> str:
    """``line`` if it is one ``CONFIG_NAME=value`` assignment, else ValueError saying why."""
    if not ASSIGNMENT.fullmatch(line):
        raise ValueError(f"{line!r} is not a Kconfig assignment like CONFIG_FFA_VM_TO_VM=y")
    return line


def read_kconfig(lines: Iterable[str]) -> dict[str, str]:
    """``CONFIG_NAME -> value`` of ``.config`` lines; ``# CONFIG_X is not set`` reads as ``n``."""
    values = {}
    for line in lines:
        line = line.strip()
        if line.startswith("CONFIG_") and "=" in line:
            name, _, value = line.partition("=")
            values[name] = value
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            values[line[2:].split()[0]] = "n"
    return values
