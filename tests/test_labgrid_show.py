"""Reading labgrid-client output and turning resources into pyserial URLs (no labgrid needed)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.errors import InfraError
from hil.labgrid import (
    PlaceLease,
    PlaceState,
    Resource,
    holder_display,
    parse_show,
    serial_url,
)

# As labgrid-client 26 prints it, trimmed to one place holding a ser2net port and a power switch.
SHOW = """Place 'lab-juno-07':
  matches:
    lab1/pty/*
  acquired: lab-host/alice
  acquired resources:
    lab1/pty/NetworkSerialPort/RawSerialPort
    lab1/pwr/NetworkPowerPort/NetworkPowerPort
  created: 2026-11-24 23:20:03.455427
  changed: 2026-11-24 23:20:05.570946
Acquired resource 'RawSerialPort' (lab1/pty/NetworkSerialPort/RawSerialPort):
  {'acquired': 'lab-juno-07',
   'avail': True,
   'cls': 'NetworkSerialPort',
   'params': {'extra': {'path': '/dev/pts/1', 'proxy': 'localhost', 'proxy_required': False},
              'host': '127.0.0.1',
              'port': 56805,
              'speed': 115200}}
Orphaned resource 'NetworkPowerPort' (lab1/pwr/NetworkPowerPort/NetworkPowerPort)
"""


def test_show_gives_holder_resources_and_orphans() -> None:
    state = parse_show(SHOW)
    assert state.holder == "lab-host/alice"
    (console,) = state.resources
    assert (console.name, console.cls, console.acquired) == (
        "RawSerialPort",
        "NetworkSerialPort",
        "lab-juno-07",
    )
    assert console.params == {"host": "127.0.0.1", "port": 56805, "speed": 115200}
    assert state.orphaned == ("NetworkPowerPort",)


def test_released_place_has_no_holder() -> None:
    assert parse_show(SHOW.replace("acquired: lab-host/alice", "acquired: None")).holder is None


def _network(**params: object) -> Resource:
    return Resource("console", "NetworkSerialPort", True, "p", {"host": "127.0.0.1", **params})


@given(st.integers(1, 65535))
def test_network_serial_urls(port: int) -> None:
    assert serial_url(_network(port=port)) == f"rfc2217://127.0.0.1:{port}?ign_set_control"
    assert serial_url(_network(port=port, protocol="raw")) == f"socket://127.0.0.1:{port}"


def test_unusable_serial_ports_have_no_url() -> None:
    # The exporter-restart trap: the resource is there, its port is not.
    assert serial_url(_network(port=None)) is None
    unavailable = Resource("console", "NetworkSerialPort", False, "p", {"host": "h", "port": 1})
    assert serial_url(unavailable) is None


def test_local_raw_serial_port_is_its_tty() -> None:
    tty = Resource("console", "RawSerialPort", True, "p", {"port": "/dev/ttyUSB3"})
    assert serial_url(tty) == "/dev/ttyUSB3"


@given(
    st.from_regex(r"[a-z0-9.-]{1,20}", fullmatch=True), st.from_regex(r"[a-z]{1,8}", fullmatch=True)
)
def test_holder_reads_as_user_at_host(host: str, user: str) -> None:
    assert holder_display(f"{host}/{user}") == f"{user}@{host}"


class TrappedClient:
    """A labgrid client whose place shows the exporter-restart trap (acquired, port None) until
    it is released and acquired again."""

    board, place = "juno-08", "lab-juno-08"

    def __init__(self, heal_after_reacquires: int) -> None:
        self.calls: list[str] = []
        self.heal_after = heal_after_reacquires

    def run(self, *args: str) -> str:
        self.calls.append(args[0])
        return ""

    def state(self) -> PlaceState:
        healed = self.calls.count("acquire") > self.heal_after
        params = {"host": "127.0.0.1", "port": 4000 if healed else None}
        serial = Resource("uart0", "NetworkSerialPort", True, "lab-juno-08", params)
        return PlaceState("host/me", (serial,), ())

    def fail(self, what: str, exc: Exception) -> Exception:
        return RuntimeError(what)


def test_port_none_trap_is_healed_by_release_and_reacquire():
    client = TrappedClient(heal_after_reacquires=1)
    with PlaceLease(client, settle=0.0, reacquire_attempts=2) as lease:  # type: ignore[arg-type]
        assert lease.console_url() == "rfc2217://127.0.0.1:4000?ign_set_control"
    assert client.calls == ["acquire", "release", "acquire", "release"]


def test_port_that_never_comes_back_is_an_infra_error_naming_board_and_resource():
    client = TrappedClient(heal_after_reacquires=99)
    with pytest.raises(InfraError) as err:
        PlaceLease(client, settle=0.0, reacquire_attempts=2).__enter__()  # type: ignore[arg-type]
    assert str(err.value) == (
        "board juno-08: labgrid place lab-juno-08 resource uart0 has no usable serial port "
        "after 2 re-acquire(s)"
    )
    assert client.calls[-1] == "release"
