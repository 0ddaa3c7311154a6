"""Arm FVP Base RevC-2xAEMvA, launched by hil on the deployed bundle's images.

``power = {backend = "fvp", model = "/opt/fvp/FVP_Base_RevC-2xAEMvA"}`` (the model is not
redistributable: the lab gives its path), options ``params`` (more ``-C NAME=VALUE`` for the
model, after hil's), ``announce_timeout`` (seconds the model may take to announce its terminals,
default 60), ``stop_timeout`` and ``workdir`` (where ``fvp.log``, the model's own output, goes;
default ``build/fvp/<board>`` beside the lab file). ``deploy = {backend = "fvp"}`` or no deploy
table: the bundle is what the next power-on launches the model on.

Each power-on starts the model with an argv built from the bundle (:func:`model_argv`): BL1 and
the FIP in its flash loaders, BL33 (Xen, or the probe without Xen) and Xen's dom0 (the probe)
loaded into RAM with ``--data``, no telnet clients and no visualisation. The model chooses its
terminal ports and prints "terminal_N: Listening for serial connection on port P"; hil reads
those lines, never assumes a port, so several models run on one host. Consoles are
:class:`hil.boards.relay.ConsoleRelay` ports that stay the same for the session.

Bundles for fvp-base-revc boards (:func:`bundle`): TF-A 2.12.1 ``PLAT=fvp SPD=spmd
SPMD_SPM_AT_SEL2=0`` with the test SPMC as BL32 for the FVP's memory map and secure UART (UART2),
the SPMC manifest as TOS_FW_CONFIG, and as HW_CONFIG TF-A's FVP device tree with Xen's /chosen
boot module for dom0 = probe (what BL31 hands BL33 in x0)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO

from hil.boards.builds import board_xen, scenario_images
from hil.boards.relay import ConsoleRelay
from hil.boot import SETTLE_S
from hil.bundle import Bundle, load_verified, write_bundle
from hil.errors import InfraError
from hil.firmware import toolchain
from hil.firmware.build import (
    FVP,
    FVP_BL33_BASE,
    BuildError,
    Firmware,
    build_firmware,
    default_build_dir,
    run_logged,
)
from hil.firmware.bundle import FIP, PROBE_IMAGE, XEN, XEN_CONFIG, XenImage
from hil.firmware.xen_dt import chosen_dts, xen_command_line
from hil.lab import BoardConfig
from hil.scenario import Scenario
from hil.xen.oracle import XenOptions

OPTIONS = ("backend", "model", "params", "announce_timeout", "stop_timeout", "workdir")
# Console name -> FVP terminal: UART0 carries TF-A's boot console, Xen and the probe; UART1
# TF-A's runtime console (BL31 crash reports); UART2 the test SPMC (the secure payload's UART).
TERMINALS: Mapping[str, int] = {"normal": 0, "runtime": 1, "secure": 2}
ANNOUNCEMENT = re.compile(rb"terminal_(\d+): Listening for serial connection on port (\d+)")
DOM0_ADDR = 0x86000000  # the probe as Xen's dom0 module: above Xen at FVP_BL33_BASE
DTB_LIMIT = 0x4000  # PLAT_ARM_HW_CONFIG_SIZE of TF-A's FVP: HW_CONFIG must fit
# Xen's part of its command line on this board; what the oracle must know comes from the
# bundle's XenOptions (XenOptions.boot_args).
BOARD_XEN_ARGS = ("console=dtuart", "dtuart=serial0", "dom0_mem=128M", "loglvl=all")
# Model parameters hil always sets. Visualisation off and no telnet client per terminal (hil
# connects itself); the model ends when the platform powers off; both clusters' 4 cores
# (PLATFORM_CORE_COUNT 8 of TF-A's FVP); Armv8.4 so that Xen and the SPMD find EL2 as they
# expect (UNVERIFIED against a real model: no FVP here).
BASE_PARAMS = (
    "bp.vis.disable_visualisation=1",
    *(f"bp.terminal_{n}.start_telnet=0" for n in range(4)),
    "bp.ve_sysregs.exit_on_shutdown=1",
    "pctl.startup=0.0.0.0",
    "cluster0.NUM_CORES=4",
    "cluster1.NUM_CORES=4",
    "cluster0.has_arm_v8-4=1",
    "cluster1.has_arm_v8-4=1",
    "cache_state_modelled=0",
)

# Bundle roles of the FVP's own images (the others are hil.firmware.bundle's).
BL1, HW_CONFIG = "bl1", "hw_config"


# -- bundles ---------------------------------------------------------------------------------------


@cache
def _firmware(build_dir: Path) -> Firmware:
    return build_firmware(toolchain.locate(), build_dir, platform=FVP)


def fvp_firmware(board: BoardConfig) -> Firmware:
    """The FVP test firmware (SPMC, probe, TF-A PLAT=fvp), built once per process."""
    try:
        return _firmware(default_build_dir().resolve())
    except (toolchain.ToolchainError, BuildError) as exc:
        raise InfraError(f"board '{board.name}': firmware: {exc}") from exc


def prepare(board: BoardConfig) -> None:
    """Build Xen (when the board has one) and the FVP firmware before the first case."""
    board_xen(board)
    fvp_firmware(board)


def xen_dts(base_dts: str, options: XenOptions, dom0_size: int) -> str:
    """TF-A's FVP device tree (as DTS) with Xen's /chosen: command line and the dom0 module."""
    return base_dts + chosen_dts(xen_command_line(BOARD_XEN_ARGS, options), DOM0_ADDR, dom0_size)


def build_images(
    fw: Firmware, scenario: Scenario, out: Path, xen: XenImage | None
) -> dict[str, Path]:
    """The scenario's FVP images in ``out``: patched SPMC and probe, SPMC manifest, HW_CONFIG
    DTB (with Xen's /chosen when there is a Xen) and the FIP repacked with them."""
    tc, log = fw.toolchain, out / "images.log"
    # Patched here for its size (Xen's dom0 module); scenario_images writes the same bytes.
    probe = fw.probe.patched(scenario.probe_plan().encode(), out / "probe.bin")
    assert fw.tfa.hw_config is not None
    hw_config = out / "fvp.dtb"
    if xen is None:
        shutil.copyfile(fw.tfa.hw_config, hw_config)
    else:
        base = out / "fvp-base.dts"
        run_logged([tc.dtc, "-I", "dtb", "-O", "dts", "-o", base, fw.tfa.hw_config], log, "dtc")
        chosen = out / "fvp-xen.dts"
        options = xen.options
        chosen.write_text(xen_dts(base.read_text(), options, probe.stat().st_size))
        run_logged([tc.dtc, "-I", "dts", "-O", "dtb", "-o", hw_config, chosen], log, "dtc")
    if hw_config.stat().st_size > DTB_LIMIT:
        raise BuildError(f"{hw_config}: larger than HW_CONFIG's {DTB_LIMIT:#x} bytes")
    images = scenario_images(fw, scenario, out, "--hw-config", hw_config)
    images.update({BL1: fw.tfa.bl1, HW_CONFIG: hw_config})
    if xen is not None:
        images[XEN] = xen.image
        if xen.config is not None:  # the .config of a Xen hil built, as QEMU bundles keep it
            images[XEN_CONFIG] = xen.config
    return images


def bundle(scenario: Scenario, board: BoardConfig, directory: Path) -> Bundle:
    """The bundle of an fvp-base-revc board for ``scenario`` (files in ``directory`` replaced)."""
    xen = board_xen(board)
    fw = fvp_firmware(board)
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="images-", dir=directory.parent) as staging:
            images = build_images(fw, scenario, Path(staging), xen)
            options, facts = (xen.options, xen.facts) if xen else (None, None)
            return write_bundle(scenario, board.type.name, directory, images, options, facts)
    except (toolchain.ToolchainError, BuildError, OSError) as exc:
        raise InfraError(f"board '{board.name}': firmware: {exc}") from exc


# -- launching -------------------------------------------------------------------------------------


def model_argv(model: Path, bundle: Bundle, params: tuple[str, ...] = ()) -> list[str]:
    """The model's argv for ``bundle``: hil's parameters, then the lab's ``params``."""
    files = bundle.files
    argv = [str(model)]
    for param in (
        f"bp.secureflashloader.fname={files[BL1]}",
        f"bp.flashloader0.fname={files[FIP]}",
        *BASE_PARAMS,
        *params,
    ):
        argv += ["-C", param]
    bl33 = files.get(XEN, files[PROBE_IMAGE])
    argv += ["--data", f"cluster0.cpu0={bl33}@{FVP_BL33_BASE:#x}"]
    if XEN in files:
        argv += ["--data", f"cluster0.cpu0={files[PROBE_IMAGE]}@{DOM0_ADDR:#x}"]
    return argv


@dataclass
class _Run:
    """One launch of the model: the process, the ports it announced, its exit when it ended."""

    process: subprocess.Popen[bytes]
    ports: dict[int, int]
    announced: threading.Event
    reader: threading.Thread
    stopping: bool = False  # hil is stopping it: its exit is no news


class FvpBoard:
    """A :class:`hil.boards.LaunchedBoard`: one model process per power-on."""

    consoles_need_power = False  # the relays listen from open() on
    console_latency_s = SETTLE_S  # each console is relayed (hil.boards.relay): a hop of its own

    def __init__(
        self,
        name: str,
        model: Path,
        workdir: Path,
        params: tuple[str, ...] = (),
        announce_timeout: float = 60.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.name, self.model, self.workdir, self.params = name, model, workdir, params
        self.announce_timeout, self.stop_timeout = announce_timeout, stop_timeout
        self.bundle: Bundle | None = None
        self._relays: dict[str, ConsoleRelay] = {}
        self._run: _Run | None = None
        self._died: Callable[[], None] | None = None

    def watch(self, died: Callable[[], None]) -> None:
        # The relays keep the consoles up across launches, so a dead model would only show as
        # silence until a stage timed out: say so at once.
        self._died = died

    def open(self) -> None:
        if self._relays:
            return
        if shutil.which(str(self.model)) is None:
            raise InfraError(
                f"board '{self.name}': FVP model {self.model} is not installed on this machine "
                "(power.model in the lab file)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._relays = {name: ConsoleRelay(f"{self.name}:{name}").open() for name in TERMINALS}

    def console_urls(self) -> dict[str, str]:
        if not self._relays:
            raise InfraError(f"board '{self.name}': not opened")
        return {name: relay.url for name, relay in self._relays.items()}

    def deploy(self, bundle: Path) -> None:
        verified = load_verified(self.name, bundle)
        missing = [role for role in (BL1, FIP, PROBE_IMAGE) if role not in verified.files]
        if missing:
            raise InfraError(
                f"board '{self.name}': cannot boot bundle {bundle}: no {', '.join(missing)} "
                "(not built for fvp-base-revc?)"
            )
        self.bundle = verified

    def argv(self) -> list[str]:
        if self.bundle is None:
            raise InfraError(f"board '{self.name}': nothing deployed to boot")
        return model_argv(self.model, self.bundle, self.params)

    def process_log(self) -> Path | None:
        return self.workdir / "fvp.log"

    def power_on(self) -> None:
        if self._run is not None and self._run.process.poll() is None:
            return
        argv = self.argv()
        log = self.process_log()
        assert log is not None
        try:
            process = subprocess.Popen(
                argv,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in hil's terminal is hil's to handle
            )
        except OSError as exc:
            raise InfraError(f"board '{self.name}': FVP model {self.model}: {exc}") from exc
        run = _Run(process, {}, threading.Event(), threading.Thread())
        run.reader = threading.Thread(
            target=self._read, args=(run, log.open("wb")), name=f"fvp-{self.name}", daemon=True
        )
        self._run = run
        run.reader.start()
        self._await_announcements(run)
        for name, terminal in TERMINALS.items():
            self._relays[name].target(run.ports[terminal])

    def _read(self, run: _Run, log: IO[bytes]) -> None:
        """Copy the model's output to its log, noting the terminal ports it announces."""
        assert run.process.stdout is not None
        with log:
            for line in run.process.stdout:
                log.write(line)
                log.flush()
                found = ANNOUNCEMENT.search(line)
                if found:
                    run.ports[int(found[1])] = int(found[2])
                    if set(TERMINALS.values()) <= set(run.ports):
                        run.announced.set()
        run.announced.set()  # output ended: nobody waits for announcements any longer
        run.process.wait()
        if not run.stopping and self._died is not None:
            self._died()

    def _await_announcements(self, run: _Run) -> None:
        wanted = sorted(TERMINALS.values())
        run.announced.wait(self.announce_timeout)
        if set(wanted) <= set(run.ports):
            return
        missing = ", ".join(f"terminal_{n}" for n in wanted if n not in run.ports)
        exited = run.process.poll() is not None or _waited(run.process, 0.2)
        self.power_off()
        if exited:
            why = f"exited with {run.process.returncode} before announcing {missing}"
        else:
            why = f"announced no {missing} within {self.announce_timeout:g} s"
        raise InfraError(f"board '{self.name}': FVP model {why}{self._last_line()}")

    def failure(self) -> str | None:
        """Why the model is not running although it was launched (it exited), or None."""
        run = self._run
        if run is None or run.process.poll() is None:
            return None
        return f"FVP model exited with {run.process.returncode}{self._last_line()}"

    def _last_line(self) -> str:
        log = self.process_log()
        try:
            lines = log.read_text(errors="replace").strip().splitlines() if log else []
        except OSError:
            lines = []
        return f"; its last line: {lines[-1].strip()!r} (in {log})" if lines else ""

    def power_off(self) -> None:
        run, self._run = self._run, None
        for relay in self._relays.values():
            relay.target(None)
        if run is None:
            return
        run.stopping = True
        if run.process.poll() is None:
            run.process.terminate()
            if not _waited(run.process, self.stop_timeout):
                run.process.kill()
                run.process.wait()
        run.reader.join(self.stop_timeout)

    def reset(self) -> None:
        # A fresh model on what was deployed since (the FVP has no reset that reloads files).
        self.power_off()
        self.power_on()

    def case_done(self) -> None:
        """Stays as it is: its consoles are the session's relays, not a power-on's."""

    def close(self) -> None:
        self.power_off()
        relays, self._relays = self._relays, {}
        for relay in relays.values():
            relay.close()


def _waited(process: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def launcher(board: BoardConfig, workdir: Path) -> FvpBoard:
    spec = board.power
    spec.only(*OPTIONS)
    model = spec.get("model", str)
    resolved = Path(model) if "/" not in model else spec.path("model")
    params = spec.strings("params")
    for i, param in enumerate(params):
        if "=" not in param or param.startswith("-"):
            raise spec.error(f"params[{i}]", f"expected NAME=VALUE (a -C parameter), got {param!r}")
    timeout = spec.get("announce_timeout", float, 60.0)
    if timeout <= 0:
        raise spec.error("announce_timeout", "must be positive")
    default_workdir = (spec.source.parent / "build" / "fvp" / board.name).resolve()
    del workdir  # the model's log goes where the lab says, like QEMU's
    return FvpBoard(
        board.name,
        resolved,
        spec.optional_path("workdir") or default_workdir,
        params,
        timeout,
        spec.get("stop_timeout", float, 5.0),
    )
