"""Lab files for tests: virtual boards with zero-delay boots and short timeouts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BOARDS_DIR = Path(__file__).resolve().parent.parent / "boards"
FAST_TIMEOUTS = {"bl1": 3, "bl2": 3, "bl31": 3, "spmc": 3, "xen": 3, "ffa": 3, "probe": 5}


def toml_value(value: Any) -> str:
    """``value`` as a TOML inline value (JSON's string escapes are valid TOML basic strings)."""
    if isinstance(value, Mapping):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def write_lab(
    directory: Path,
    boards: dict[str, dict[str, Any]],
    boot_attempts: int = 2,
    stage_delay: float | None = 0.0,
) -> Path:
    """``boards``: name -> extra board keys (e.g. {"xen_profile": "xen-4.21"}); each is a
    virtual board hil launches, with ``stage_delay`` s per boot stage unless its power table says
    otherwise (None: the virtual board's realistic delays)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        f"boards_dir = {toml_value(str(BOARDS_DIR))}",
        f"results_dir = {toml_value(str(directory / 'results'))}",
        f"boot_attempts = {boot_attempts}",
    ]
    for name, extra in boards.items():
        delay = {} if stage_delay is None else {"stage_delay": stage_delay}
        power = {"backend": "virtual", **delay, **extra.pop("power", {})}
        board = {"name": name, "type": "virtual", "xen_profile": "xen-4.22", **extra}
        board.setdefault("timeouts", FAST_TIMEOUTS)
        lines.append("[[board]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in board.items()]
        lines.append(f"power = {toml_value(power)}")
    path = directory / "lab.toml"
    path.write_text("\n".join(lines) + "\n")
    return path
