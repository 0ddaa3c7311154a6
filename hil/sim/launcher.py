"""Start and stop virtual board processes (``python -m hil.sim``) from the controller or tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import InfraError
from hil.sim.client import SimControl

POLL = 0.02


@dataclass
class VirtualBoardProcess:
    name: str
    process: subprocess.Popen[bytes]
    host: str
    consoles: dict[str, int]
    control: SimControl
    workdir: Path
    stopped: bool = field(default=False)

    @property
    def console_url(self) -> str:
        """pyserial URL of the normal-world console."""
        return self.console_url_for("ns")

    def console_url_for(self, console: str) -> str:
        return f"socket://{self.host}:{self.consoles[console]}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(
        cls,
        name: str,
        profile: str = "xen-4.22",
        *,
        workdir: Path,
        stage_delay: float | None = None,
        faults: dict[str, Any] | None = None,
        xen_options: dict[str, Any] | None = None,
        console_timestamps: bool = False,
        wait_for_console: bool = True,
        connect_settle: float | None = None,
        host: str = "127.0.0.1",
        timeout: float = 10.0,
    ) -> VirtualBoardProcess:
        """Spawn the board and wait until it listens (InfraError naming it otherwise)."""
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        port_file = workdir / f"{name}.ports.json"
        port_file.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "hil.sim", "--name", name, "--host", host]
        argv += ["--port-file", str(port_file), "--workdir", str(workdir), "--profile", profile]
        argv += ["--parent-pid", str(os.getpid())]  # the board dies with us, even on SIGKILL
        argv += [
            "--faults",
            json.dumps(faults or {}),
            "--xen-options",
            json.dumps(xen_options or {}),
        ]
        if stage_delay is not None:
            argv += ["--stage-delay", str(stage_delay)]
        if console_timestamps:
            argv.append("--console-timestamps")
        if connect_settle is not None:
            argv += ["--connect-settle", str(connect_settle)]
        if not wait_for_console:
            argv.append("--no-wait-for-console")
        log = workdir / f"{name}.board.log"
        with log.open("wb") as out:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if process.poll() is not None:
                detail = log.read_text(errors="replace").strip().splitlines()
                raise InfraError(
                    f"virtual board {name} exited with {process.returncode} before listening: "
                    f"{detail[-1] if detail else 'no output'}"
                )
            if time.monotonic() > deadline:
                _kill(process)
                raise InfraError(f"virtual board {name} did not listen within {timeout} s")
            time.sleep(POLL)
        info = json.loads(port_file.read_text(encoding="utf-8"))
        control = SimControl(host, int(info["control"]), board=name)
        return cls(name, process, host, dict(info["consoles"]), control, workdir)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the board to quit, then terminate, then kill; always reaps the process."""
        if self.stopped:
            return
        self.stopped = True
        if self.process.poll() is None:
            try:
                self.control.quit()
                self.process.wait(timeout)
            except (InfraError, subprocess.TimeoutExpired):
                _kill(self.process, timeout)

    def __enter__(self) -> VirtualBoardProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _kill(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
