"""Board back-ends (``PowerBackend``, ``Deployer`` of hil.power / hil.deploy) for a virtual board,
over its control channel. hil.power / hil.deploy register them lazily as back-end "virtual"
(``power_from_spec`` / ``deployer_from_spec``). A board's table names the running board by
``control = "HOST:PORT"`` or by ``port_file`` (the JSON file ``python -m hil.sim`` writes);
``timeout`` (seconds) bounds each request. Errors are InfraError naming the board."""

from __future__ import annotations

import json
from pathlib import Path

from hil.backend import BackendSpec
from hil.errors import InfraError
from hil.sim.client import SimControl

OPTIONS = ("control", "port_file", "timeout")


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


def control_from_spec(spec: BackendSpec) -> SimControl:
    spec.only("backend", *OPTIONS)
    timeout = spec.get("timeout", float, 10.0)
    if ("control" in spec.data) == ("port_file" in spec.data):
        raise spec.error("control", "give exactly one of 'control' (HOST:PORT) and 'port_file'")
    if "control" in spec.data:
        host, _, port = spec.get("control", str).rpartition(":")
        if not host or not port.isdigit():
            raise spec.error("control", f"expected HOST:PORT, got {spec.data['control']!r}")
        return SimControl(host, int(port), board=spec.board, timeout=timeout)
    path = spec.path("port_file")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return SimControl(info["host"], int(info["control"]), board=spec.board, timeout=timeout)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InfraError(f"board '{spec.board}': virtual board port file {path}: {exc}") from None


def power_from_spec(spec: BackendSpec) -> VirtualPower:
    return VirtualPower(control_from_spec(spec))


def deployer_from_spec(spec: BackendSpec) -> VirtualDeployer:
    return VirtualDeployer(control_from_spec(spec))
