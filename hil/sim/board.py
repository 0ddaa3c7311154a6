"""One virtual board's state: power, the deployed bundle, the fault set, and the boot in progress,
which plays the boot script back on the consoles and applies the faults.

After a reset or power-on the boot waits for a client on the ``ns`` console before its first
byte (unless told not to), so in the normal case a controller that connects, then resets, loses
nothing. The board starts powered on, like an FVP that boots when launched."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hil.errors import ConfigError
from hil.ffa.errors import FfaFormatError
from hil.sim.boot_script import CONSOLES, EOL, STAGES, BootConfig, boot_script
from hil.sim.bundle import load_bundle
from hil.sim.faults import Fault, FaultKind, FaultSet
from hil.sim.server import ConsolePort


class VirtualBoard:
    def __init__(
        self,
        name: str,
        config: BootConfig,
        consoles: Mapping[str, ConsolePort],
        wait_for_console: bool = True,
    ) -> None:
        self.name = name
        self.config = config
        self.consoles = dict(consoles)
        self.wait_for_console = wait_for_console
        self.faults = FaultSet()
        self.script = boot_script(config, None)
        self.powered = True
        self._boot: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.powered:
            self._restart()

    def deploy(self, bundle: Path) -> None:
        """Boot ``bundle`` from the next reset on (a bad bundle raises, naming the file). The
        script is made here so a bundle the model cannot boot is refused at deploy time."""
        loaded = load_bundle(bundle)
        try:
            self.script = boot_script(self.config, loaded)
        except FfaFormatError as exc:
            raise ConfigError(f"{loaded.path}: board {self.name} cannot boot it: {exc}") from None

    def reset(self) -> None:
        self.powered = True
        self._restart()

    def power(self, on: bool) -> None:
        if on and not self.powered:
            self.reset()
        elif not on:
            self.powered = False
            self._cancel()

    def set_faults(self, faults: Mapping[str, Any] | str) -> None:
        self.faults = FaultSet.parse(faults, STAGES, CONSOLES)

    def _cancel(self) -> None:
        if self._boot is not None:
            self._boot.cancel()
            self._boot = None

    def _restart(self) -> None:
        self._cancel()
        self._boot = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        if self.wait_for_console:
            await self.consoles["ns"].wait_client()
        while await self._boot_once():
            pass

    async def _boot_once(self) -> bool:
        """Play one boot; True when a reboot fault restarts it."""
        ms_per_byte = dict.fromkeys(self.consoles, 0.0)
        for stage in self.script:
            await asyncio.sleep(stage.delay)
            due = self.faults.fire(stage.name)
            port = self.consoles[stage.console]
            # Lines are written in runs between the lines where faults act.
            cuts = sorted({min(f.line, len(stage.lines)) for f in due} | {0})
            for start, end in zip(cuts, [*cuts[1:], len(stage.lines)], strict=True):
                data = "".join(line + EOL for line in stage.lines[start:end]).encode()
                for fault in (f for f in due if min(f.line, len(stage.lines)) == start):
                    if fault.kind is FaultKind.STALL:
                        return False
                    if fault.kind in (FaultKind.REBOOT, FaultKind.REBOOT_LOOP):
                        return True
                    if fault.kind is FaultKind.CORRUPT:
                        data = fault.corrupt(data)
                    elif fault.kind is FaultKind.DROP:
                        data = fault.drop(data)
                    else:
                        await self._apply(fault, ms_per_byte)
                await port.write(data, ms_per_byte[stage.console])
        return False

    async def _apply(self, fault: Fault, ms_per_byte: dict[str, float]) -> None:
        """A fault that lets the boot go on."""
        port = self.consoles[fault.console]
        if fault.kind in (FaultKind.GARBAGE, FaultKind.BURST, FaultKind.TEXT):
            await port.write(fault.noise(), ms_per_byte[fault.console])
        elif fault.kind is FaultKind.DISCONNECT:
            port.drop_client()
            if fault.hold:
                await port.wait_client()
        elif fault.kind is FaultKind.SLOW:
            ms_per_byte[fault.console] = fault.ms_per_byte

    async def close(self) -> None:
        boot, self._boot = self._boot, None
        if boot is not None:
            boot.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await boot
        for port in self.consoles.values():
            await port.close()
