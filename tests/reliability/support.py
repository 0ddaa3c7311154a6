"""A throw-away lab of launched virtual boards, ``hil run`` on it, and what the board sent versus
what the controller captured."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.cli import main
from tests.labs import toml_value

BOARDS_DIR = Path(__file__).resolve().parents[2] / "boards"
# Small per-stage timeouts so a stall costs half a second, not the board type's real ones.
FAST_TIMEOUTS: dict[str, float] = {
    "bl1": 0.5,
    "bl2": 0.5,
    "bl31": 0.5,
    "spmc": 0.5,
    "xen": 0.5,
    "ffa": 0.5,
    "probe": 0.5,
}
TFA_BANNER = b"NOTICE:  Booting Trusted Firmware"


def board_table(
    name: str,
    faults: Mapping[str, Any] | None = None,
    *,
    timeouts: Mapping[str, float] | None = None,
    stage_delay: float = 0.0,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A ``[[board]]`` table: a virtual board hil launches, with ``faults``."""
    power = {"backend": "virtual", "stage_delay": stage_delay, "faults": dict(faults or {})}
    board: dict[str, Any] = {
        "name": name,
        "type": "virtual",
        "xen_profile": "xen-4.22",
        "timeouts": dict(timeouts or FAST_TIMEOUTS),
        "power": power,
        **(extra or {}),
    }
    return "\n[[board]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in board.items())


def write_lab(
    directory: Path,
    faults: Mapping[str, Any] | None = None,
    *,
    boards: Sequence[str] = ("v0",),
    boot_attempts: int = 3,
    tables: Sequence[str] = (),
    **board: Any,
) -> Path:
    """lab.toml with one launched virtual board per name in ``boards`` (each with ``faults`` and
    ``board_table``'s keywords), then the ready-made ``tables``."""
    directory.mkdir(parents=True, exist_ok=True)
    text = f"boards_dir = {json.dumps(str(BOARDS_DIR))}\nboot_attempts = {boot_attempts}\n"
    text += "".join(board_table(name, faults, **board) for name in boards) + "".join(tables)
    path = directory / "lab.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    seconds: float
    summary: dict[str, Any]
    run_dir: Path

    @property
    def cases(self) -> list[dict[str, Any]]:
        return list(self.summary["run"]["cases"])

    @property
    def case(self) -> dict[str, Any]:
        (only,) = self.cases
        return only

    def raw(self, board: str, scenario: str, console: str = "ns") -> bytes:
        return (self.run_dir / board / scenario / f"{console}.raw").read_bytes()

    def sent(self, board: str, console: str = "ns") -> bytes:
        """Every byte the virtual board sent on ``console`` in its life (its own copy)."""
        return (self.run_dir / board / ".board" / f"{board}.{console}.sent").read_bytes()


def hil_run(
    lab: Path, results: Path, *args: str, scenarios: Sequence[str] = ("all-secure",)
) -> Outcome:
    """``hil run`` in this process; the run's summary.json must exist."""
    argv = ["run", "--lab", str(lab), "--results", str(results), *args]
    for scenario in scenarios:
        argv += ["--scenario", scenario]
    t0 = time.monotonic()
    code = main(argv)
    seconds = time.monotonic() - t0
    (run_dir,) = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return Outcome(code, seconds, summary, run_dir)


def boots(sent: bytes) -> list[bytes]:
    """``sent`` cut at each TF-A banner: one piece per boot the board started."""
    starts = [i for i in _find_all(sent, TFA_BANNER)] or [0]
    return [sent[a:b] for a, b in zip(starts, [*starts[1:], len(sent)], strict=True)]


def _find_all(data: bytes, needle: bytes) -> list[int]:
    found, i = [], data.find(needle)
    while i >= 0:
        found.append(i)
        i = data.find(needle, i + 1)
    return found
