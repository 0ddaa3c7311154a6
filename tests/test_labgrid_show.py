"""Reading labgrid-client output and turning resources into pyserial URLs (no labgrid needed)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hil.labgrid import Resource, holder_display, parse_show, serial_url

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
