"""A stand-in for FVP_Base_RevC-2xAEMvA (the real model cannot be downloaded here).

``python -m tests.fvp_standin [--standin-mode MODE] [--standin-profile P] -- <model argv>``

It checks the model argv as a real model would refuse it: every ``-C`` parameter must be one the
Base RevC model has (a fixed list here, written from Arm's parameter names, not from hil), flash
images and ``--data`` files must exist, ``--data`` must be ``cluster0.cpu0=FILE@ADDRESS`` into
DRAM. Then it listens on free ports, announces each terminal as the model does ("terminal_N:
Listening for serial connection on port P") and serves the boot of the deployed bundle on them:
the virtual board's model (hil.sim) on terminal_0 (UART0) and terminal_2 (UART2, the SPMC),
read from the images hil passed (the bundle beside the FIP). Unlike a real model it starts the
boot only once terminals 0 and 2 have a client.

Modes: ``boot`` (default); ``crash`` (boots, then dies 0.3 s in); ``silent`` (never announces);
``refuse`` (exits 1 at once with a licence error)."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
from pathlib import Path

# -C parameters of FVP_Base_RevC-2xAEMvA this stand-in knows (a real model has many more).
KNOWN_PARAMS = {
    "bp.secureflashloader.fname",
    "bp.flashloader0.fname",
    "bp.vis.disable_visualisation",
    "bp.ve_sysregs.exit_on_shutdown",
    "bp.secure_memory",
    "pctl.startup",
    "cache_state_modelled",
    *(f"bp.terminal_{n}.start_telnet" for n in range(4)),
    *(f"cluster{c}.{p}" for c in (0, 1) for p in ("NUM_CORES", "has_arm_v8-4", "has_arm_v8-5")),
}
FILE_PARAMS = ("bp.secureflashloader.fname", "bp.flashloader0.fname")
DATA = re.compile(r"cluster0\.cpu0=(?P<file>.+)@(?P<addr>0x[0-9a-fA-F]+)")
DRAM = (0x80000000, 0x100000000)  # DRAM0 of the Base platform memory map
SERVED = {"ns": 0, "secure": 2}  # virtual board console -> terminal


def refuse(text: str) -> None:
    print(f"Error: {text}", file=sys.stderr, flush=True)
    sys.exit(1)


def check_argv(argv: list[str]) -> tuple[dict[str, str], list[tuple[Path, int]]]:
    params: dict[str, str] = {}
    data: list[tuple[Path, int]] = []
    args = iter(argv)
    for arg in args:
        value = next(args, None)
        if value is None:
            refuse(f"option {arg} needs a value")
        assert value is not None
        if arg == "-C":
            name, eq, setting = value.partition("=")
            if not eq or name not in KNOWN_PARAMS:
                refuse(f"unknown parameter '{name}'")
            params[name] = setting
        elif arg == "--data":
            found = DATA.fullmatch(value)
            if found is None:
                refuse(f"--data {value!r}: expected cluster0.cpu0=FILE@ADDRESS")
            assert found is not None
            path, address = Path(found["file"]), int(found["addr"], 16)
            if not path.is_file():
                refuse(f"--data: cannot open {path}")
            if not DRAM[0] <= address < DRAM[1]:
                refuse(f"--data: {address:#x} is not in DRAM")
            data.append((path, address))
        else:
            refuse(f"unknown option {arg}")
    for name in FILE_PARAMS:
        if name not in params or not Path(params[name]).is_file():
            refuse(f"{name}: cannot open {params.get(name)!r}")
    return params, data


async def serve(params: dict[str, str], profile: str, mode: str) -> None:
    # Imported here: a model that refuses or stays silent says so before hil's modules load.
    from hil.sim.board import VirtualBoard
    from hil.sim.boot_script import BootConfig
    from hil.sim.server import ConsolePort

    bundle = Path(params["bp.flashloader0.fname"]).parent
    sent = Path(tempfile.mkdtemp(prefix="fvp-standin-"))
    terminals = [ConsolePort(f"terminal_{n}", sent / f"t{n}", settle_s=0.0) for n in range(4)]
    ports = [await t.start("127.0.0.1", 0) for t in terminals]
    print("Info: FVP_Base_RevC-2xAEMvA (stand-in): starting", flush=True)
    for n, port in enumerate(ports):
        print(f"terminal_{n}: Listening for serial connection on port {port}", flush=True)
    board = VirtualBoard("fvp", BootConfig(profile), {c: terminals[n] for c, n in SERVED.items()})
    board.deploy(bundle)
    for console in SERVED.values():
        await terminals[console].wait_client()
    board.start()
    if mode == "crash":
        await asyncio.sleep(0.3)
        print("Error: simulation aborted: internal error in cluster0.cpu0", flush=True)
        os._exit(134)
    await asyncio.Event().wait()  # runs until killed, as a model whose software idles


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--standin-mode", default="boot", choices=("boot", "crash", "silent", "refuse")
    )
    parser.add_argument("--standin-profile", default="xen-4.22")
    parser.add_argument("model_argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = [a for a in args.model_argv if a != "--"]
    if args.standin_mode == "refuse":
        refuse("no licence available for FVP_Base_RevC-2xAEMvA")
    params, data = check_argv(argv)
    if args.standin_mode == "silent":
        print("Info: FVP_Base_RevC-2xAEMvA (stand-in): waiting for a licence", flush=True)
        asyncio.run(asyncio.Event().wait())
    bl33 = next((path for path, address in data if address == 0x84000000), None)
    profile = "none" if bl33 is None or bl33.name.startswith("probe") else args.standin_profile
    asyncio.run(serve(params, profile, args.standin_mode))


if __name__ == "__main__":
    main()
