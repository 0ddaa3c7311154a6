"""Virtual boards published as labgrid places on a loopback coordinator, for `hil run` through
labgrid (tests/test_labgrid_run.py, bench/labgrid_bench.py).

Each board's `ns` and `secure` TCP consoles are exported as raw NetworkSerialPort resources of a
group named after the board, matched by place ``place-<board>``. Its control channel is no labgrid
resource, so the lab board drives power and deploy through it directly (backend "virtual")."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hil.labgrid import parse_show
from hil.sim.launcher import VirtualBoardProcess
from tests.labgrid_lab import EXPORTER, Lab, _listening, free_port
from tests.labs import BOARDS_DIR, FAST_TIMEOUTS

CONSOLES = ("ns", "secure")


def place_of(board: str) -> str:
    return f"place-{board}"


@dataclass
class VirtualPlaces(Lab):
    """A coordinator and an exporter on 127.0.0.1 publishing running virtual boards."""

    boards: dict[str, VirtualBoardProcess] = field(default_factory=dict)

    def start_boards(self, names: list[str], stage_delay: float) -> None:
        for name in names:
            self.boards[name] = VirtualBoardProcess.start(
                name, workdir=self.workdir / name, stage_delay=stage_delay
            )
        (self.workdir / "exporter.yaml").write_text(json.dumps(self._exports()))
        self.coordinator = f"127.0.0.1:{free_port()}"
        port = int(self.coordinator.rpartition(":")[2])
        self._spawn("coordinator", "labgrid-coordinator", "-l", self.coordinator)
        self._wait_for(lambda: _listening(port), "coordinator listening")
        self.start_exporter()
        for name in names:
            self.labgrid("-p", place_of(name), "create")
            self.labgrid("-p", place_of(name), "add-match", f"{EXPORTER}/{name}/*")

    def place_holder(self, board: str) -> str | None:
        return parse_show(self.labgrid("-p", place_of(board), "show")).holder

    def write_lab(self, directory: Path, through_labgrid: bool) -> Path:
        """lab.toml for every board, reached through its place or directly by its TCP ports."""
        lines = [
            f"boards_dir = {json.dumps(str(BOARDS_DIR))}",
            f"results_dir = {json.dumps(str(directory / 'results'))}",
            "boot_attempts = 2",
            f"coordinator = {json.dumps(self.coordinator)}",
        ]
        for name, board in self.boards.items():
            control = f'{{ backend = "virtual", control = "127.0.0.1:{board.control.port}" }}'
            if through_labgrid:
                consoles = ", ".join(f'{c} = "{c}"' for c in CONSOLES)
                lines.append(f'[[board]]\nplace = "{place_of(name)}"')
            else:
                consoles = ", ".join(f'{c} = "{board.console_url_for(c)}"' for c in CONSOLES)
                lines.append("[[board]]")
            timeouts = ", ".join(f"{k} = {v}" for k, v in FAST_TIMEOUTS.items())
            lines += [
                f'name = "{name}"\ntype = "virtual"\nxen_profile = "xen-4.22"',
                f"consoles = {{ {consoles} }}",
                f"power = {control}\ndeploy = {control}",
                f"timeouts = {{ {timeouts} }}",
            ]
        path = directory / "lab.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            for board in self.boards.values():
                board.stop()

    def _exports(self) -> dict[str, dict[str, dict[str, object]]]:
        return {
            name: {
                console: {
                    "cls": "NetworkSerialPort",
                    "host": "127.0.0.1",
                    "port": board.consoles[console],
                    "protocol": "raw",
                }
                for console in CONSOLES
            }
            for name, board in self.boards.items()
        }

    def _exported(self) -> bool:
        listing = self.labgrid("resources")
        return all(f"{EXPORTER}/{name}/" in listing for name in self.boards)


@contextlib.contextmanager
def virtual_places(workdir: Path, names: list[str], stage_delay: float) -> Iterator[VirtualPlaces]:
    lab = VirtualPlaces(workdir)
    try:
        lab.start_boards(names, stage_delay)
        yield lab
    finally:
        lab.stop()
