"""``python -m hil.sim``: run one virtual board until a ``quit`` control request or a signal.

Once every server listens, the port file is written atomically as JSON:
``{"host": HOST, "console": NS_PORT, "consoles": {"ns": NS_PORT, "secure": SECURE_PORT},
"control": PORT, "pid": PID}``; it is removed again on exit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from hil.errors import ExitCode, HilError, UsageError
from hil.sim.board import VirtualBoard
from hil.sim.boot_script import CONSOLES, BootConfig
from hil.sim.server import CONNECT_SETTLE, ConsolePort, ControlServer
from hil.xen.oracle import XenOptions, get_profile

# How often a board launched by a controller checks that the controller is still alive.
PARENT_POLL_S = 0.2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hil.sim", description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="board name (in messages and file names)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--console-port", type=int, default=0, help="ns console port (0: any)")
    p.add_argument("--secure-console-port", type=int, default=0, help="secure console port")
    p.add_argument("--control-port", type=int, default=0)
    p.add_argument("--port-file", type=Path, required=True)
    p.add_argument("--workdir", type=Path, help="sent-logs go here (default: the port file's dir)")
    p.add_argument("--profile", default="xen-4.22", help="Xen behaviour profile of the oracle")
    p.add_argument(
        "--stage-delay", type=float, help="seconds per boot stage (default: realistic; 0: none)"
    )
    p.add_argument(
        "--connect-settle",
        type=float,
        default=CONNECT_SETTLE,
        help="seconds a boot waits after a console client connects",
    )
    p.add_argument("--faults", default="{}", help="fault set as JSON (see hil.sim.faults)")
    p.add_argument("--xen-options", default="{}", help="hil.xen.oracle.XenOptions as JSON")
    p.add_argument("--console-timestamps", action="store_true", help="Xen console_timestamps=boot")
    p.add_argument(
        "--parent-pid",
        type=int,
        help="quit when this process is no longer our parent (it died, even by SIGKILL)",
    )
    p.add_argument(
        "--no-wait-for-console",
        dest="wait_for_console",
        action="store_false",
        help="boot without waiting for an ns console client (its output may be lost)",
    )
    return p


def xen_options(text: str) -> XenOptions:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--xen-options: not valid JSON: {exc}") from None
    known = {f.name for f in fields(XenOptions)}
    if not isinstance(values, dict) or not set(values) <= known:
        raise UsageError(f"--xen-options: expected an object with fields among {sorted(known)}")
    return XenOptions(**values)


def write_port_file(path: Path, host: str, ports: dict[str, int], control: int) -> None:
    info = {
        "host": host,
        "console": ports["ns"],
        "consoles": ports,
        "control": control,
        "pid": os.getpid(),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info), encoding="utf-8")
    tmp.replace(path)


async def serve(args: argparse.Namespace) -> None:
    workdir = args.workdir or args.port_file.parent
    workdir.mkdir(parents=True, exist_ok=True)
    get_profile(args.profile)  # an unknown profile fails now, naming it
    config = BootConfig(
        args.profile, xen_options(args.xen_options), args.console_timestamps, args.stage_delay
    )
    consoles = {
        c: ConsolePort(c, workdir / f"{args.name}.{c}.sent", args.connect_settle) for c in CONSOLES
    }
    board = VirtualBoard(args.name, config, consoles, args.wait_for_console)
    board.set_faults(args.faults)
    control = ControlServer(board)
    watch: asyncio.Task[None] | None = None
    try:
        requested = {"ns": args.console_port, "secure": args.secure_console_port}
        ports = {c: await port.start(args.host, requested[c]) for c, port in consoles.items()}
        control_port = await control.start(args.host, args.control_port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, control.stopped.set)
        write_port_file(args.port_file, args.host, ports, control_port)
        board.start()
        if args.parent_pid is not None:
            watch = asyncio.create_task(_watch_parent(args.parent_pid, control.stopped))
        await control.stopped.wait()
    finally:
        if watch is not None:
            watch.cancel()
        with contextlib.suppress(FileNotFoundError):
            args.port_file.unlink()
        await control.close()
        await board.close()


async def _watch_parent(pid: int, stopped: asyncio.Event) -> None:
    """Set ``stopped`` once ``pid`` stops being our parent: a killed controller cannot ask us to
    quit, and orphaned boards would pile up. Polling getppid (we get re-parented when the parent
    dies) rather than PR_SET_PDEATHSIG, which fires when the forking *thread* ends (the runner
    launches boards from pool threads) and is Linux-only."""
    while os.getppid() == pid:
        await asyncio.sleep(PARENT_POLL_S)
    stopped.set()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(serve(args))
    except HilError as exc:
        print(f"hil.sim: error: board {args.name}: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except OSError as exc:
        print(f"hil.sim: error: board {args.name}: {exc}", file=sys.stderr)
        return int(ExitCode.INFRA)
    return 0


if __name__ == "__main__":
    sys.exit(main())
