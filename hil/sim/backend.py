"""Board back-ends (``PowerBackend``, ``Deployer`` of hil.power / hil.deploy) for a virtual board,
over its control channel. Errors are InfraError naming the board (SimControl does that)."""

from __future__ import annotations

from pathlib import Path

from hil.sim.client import SimControl

BACKEND = "virtual"


class VirtualPower:
    def __init__(self, control: SimControl) -> None:
        self.control = control

    def power_on(self) -> None:
        self.control.power(True)

    def power_off(self) -> None:
        self.control.power(False)

    def reset(self) -> None:
        self.control.reset()

    def close(self) -> None:
        """Nothing to release: every request uses its own connection."""


class VirtualDeployer:
    def __init__(self, control: SimControl) -> None:
        self.control = control

    def deploy(self, bundle: Path) -> None:
        self.control.deploy(bundle)
