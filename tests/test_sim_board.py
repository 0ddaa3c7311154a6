"""The virtual board process end to end: consoles over pyserial socket://, the control channel,
boots checked against the oracle, the sent-log, and clean stops."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.backend import BackendSpec
from hil.deploy import DEPLOY
from hil.errors import ConfigError, InfraError
from hil.power import POWER
from hil.probe import parse_transcript
from hil.sim.boot_script import NO_BUNDLE
from hil.sim.launcher import VirtualBoardProcess
from hil.xen.oracle import XenOptions, expect
from tests.sim_support import PLAN, SPMC, connect, last_boot, make_bundle, read_for, read_until

END = b"HILPROBE end\r\n"


@pytest.fixture
def board(tmp_path: Path) -> Iterator[VirtualBoardProcess]:
    with VirtualBoardProcess.start("vb0", workdir=tmp_path / "board", stage_delay=0) as handle:
        yield handle
    assert handle.process.poll() is not None


XEN_LINE = re.compile(r"\(XEN\) (?:\[ *(\d+\.\d{6})\] )?(.*)")


def xen_texts(lines: list[str]) -> list[str]:
    """Text of the FF-A init lines a boot printed (between the SMCCC line and dom0 loading)."""
    texts = [m[2] for line in lines if (m := XEN_LINE.fullmatch(line))]
    first = next(i for i, t in enumerate(texts) if t.startswith("Using SMC Calling")) + 1
    last = texts.index("*** LOADING DOMAIN 0 ***")
    return texts[first:last]


def test_boot_prints_what_the_oracle_predicts(board: VirtualBoardProcess, tmp_path: Path) -> None:
    expected = expect("xen-4.22", SPMC, PLAN)
    with connect(board.console_url) as ns, connect(board.console_url_for("secure")) as secure:
        board.control.deploy(make_bundle(tmp_path / "bundle"))
        board.control.reset()
        lines = last_boot(read_until(ns, END))
        spmc_line = read_until(secure, b"\r\n").decode()
    assert "NOTICE:  BL31: v2.12.1(release):v2.12.1" in lines
    assert any(line.startswith("(XEN) Xen version 4.22.0 ") for line in lines)
    assert xen_texts(lines) == [line.text for line in expected.boot.lines]
    assert parse_transcript(lines) == expected.transcript
    assert f"count={SPMC.count} fpi_size={SPMC.fpi_size}" in spmc_line
    assert spmc_line.startswith("HIL test SPMC v1 ")


def test_console_timestamps_prefix_every_xen_line(tmp_path: Path) -> None:
    options = XenOptions(tee_cmdline="ffa")
    with (
        VirtualBoardProcess.start(
            "vb-ts",
            workdir=tmp_path / "board",
            stage_delay=0,
            console_timestamps=True,
            xen_options={"tee_cmdline": "ffa"},
        ) as board,
        connect(board.console_url) as ns,
    ):
        board.control.deploy(make_bundle(tmp_path / "bundle"))
        board.control.reset()
        lines = last_boot(read_until(ns, END))
    stamps = [m[1] for line in lines if (m := XEN_LINE.fullmatch(line))]
    assert stamps and None not in stamps
    assert stamps == sorted(stamps, key=float)
    expected = expect("xen-4.22", SPMC, PLAN, options).boot.lines
    assert xen_texts(lines) == [line.text for line in expected]


def test_profile_none_runs_the_probe_as_bl33(tmp_path: Path) -> None:
    with (
        VirtualBoardProcess.start(
            "vb-none", "none", workdir=tmp_path / "b", stage_delay=0
        ) as board,
        connect(board.console_url) as ns,
    ):
        board.control.deploy(make_bundle(tmp_path / "bundle"))
        board.control.reset()
        lines = last_boot(read_until(ns, END))
    assert not any(line.startswith("(XEN)") for line in lines)
    assert any(line.startswith("HILPROBE begin ") and line.endswith(" el=2") for line in lines)
    assert parse_transcript(lines) == expect("none", SPMC, PLAN).transcript


def test_undeployed_board_refuses_after_tfa(board: VirtualBoardProcess) -> None:
    with connect(board.console_url) as ns:
        data = read_until(ns, NO_BUNDLE.encode() + b"\r\n")
        data += ns.read(4096)
    lines = last_boot(data)
    assert lines[-1] == NO_BUNDLE
    assert "NOTICE:  BL31: Built : 00:00:00, Jul 29 2026" in lines
    assert not any("(XEN)" in line or "HILPROBE" in line for line in lines)


def test_bad_bundles_are_refused_naming_the_file(
    board: VirtualBoardProcess, tmp_path: Path
) -> None:
    garbled = make_bundle(tmp_path / "garbled")
    (garbled / "probe-plan.bin").write_bytes(b"garbage")
    with pytest.raises(InfraError, match=r"vb0: deploy failed: .*probe-plan\.bin: sha256"):
        board.control.deploy(garbled)
    missing = make_bundle(tmp_path / "missing")
    (missing / "spmc-config.bin").unlink()
    with pytest.raises(InfraError, match=r"spmc-config\.bin: cannot read"):
        board.control.deploy(missing)
    with pytest.raises(InfraError, match=r"bundle\.json: cannot read"):
        board.control.deploy(tmp_path / "nowhere")


def test_control_rejects_bad_requests(board: VirtualBoardProcess) -> None:
    with pytest.raises(InfraError, match="bad request"):
        board.control.request(cmd="explode")
    with pytest.raises(InfraError, match="unknown fault 'melt'"):
        board.control.set_faults({"melt": {}})
    with socket.create_connection(("127.0.0.1", board.control.port), 2) as sock:
        sock.sendall(b"not json\n")
        assert b'"ok": false' in sock.makefile("rb").readline()


def test_sent_log_equals_what_a_connected_client_received(
    board: VirtualBoardProcess, tmp_path: Path
) -> None:
    with connect(board.console_url) as ns:
        received = read_until(ns, NO_BUNDLE.encode() + b"\r\n")
        board.control.deploy(make_bundle(tmp_path / "bundle"))
        board.control.reset()
        received += read_until(ns, END)
    assert board.control.sent_log().read_bytes() == received
    assert board.control.sent_log("secure").read_bytes().startswith(b"HIL test SPMC v1 ")


def test_a_new_console_client_replaces_the_old(board: VirtualBoardProcess) -> None:
    host, port = board.host, board.consoles["ns"]
    with socket.create_connection((host, port), 2) as old:
        old.settimeout(2)
        with socket.create_connection((host, port), 2) as new:
            new.settimeout(2)
            while old.recv(4096):
                pass  # whatever old got before being replaced, then EOF
            board.control.reset()
            assert new.recv(64).startswith(b"NOTICE:  Booting Trusted Firmware")


def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    board = VirtualBoardProcess.start("vb-stop", workdir=tmp_path, stage_delay=0)
    pid = board.pid
    board.stop()
    assert board.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (tmp_path / "vb-stop.ports.json").exists()


def test_unknown_profile_fails_at_start_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match=r"vb-bad exited with 2 .*xen-9\.9"):
        VirtualBoardProcess.start("vb-bad", "xen-9.9", workdir=tmp_path)


def test_registered_virtual_back_ends_drive_the_board(
    board: VirtualBoardProcess, tmp_path: Path
) -> None:
    lab = tmp_path / "lab.toml"
    port_file = {"port_file": "board/vb0.ports.json"}
    power = POWER.create(BackendSpec(lab, "board 'vb0'", "power.", port_file, "vb0", "virtual"))
    control = {"control": f"127.0.0.1:{board.control.port}"}
    deployer = DEPLOY.create(BackendSpec(lab, "board 'vb0'", "deploy.", control, "vb0", "virtual"))
    with connect(board.console_url) as ns:
        read_until(ns, NO_BUNDLE.encode())
        deployer.deploy(make_bundle(tmp_path / "bundle"))
        power.power_off()
        assert read_for(ns, 0.3) == b""
        power.power_on()
        assert parse_transcript(last_boot(read_until(ns, END))).complete
        power.reset()
        assert parse_transcript(last_boot(read_until(ns, END))).complete
    power.close()
    with pytest.raises(ConfigError, match="exactly one of 'control'"):
        POWER.create(BackendSpec(lab, "board 'vb0'", "power.", {}, "vb0", "virtual"))
