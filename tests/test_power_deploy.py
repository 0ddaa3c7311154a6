from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hil.backend import BackendSpec
from hil.deploy import DEPLOY, CommandDeployer, CopyDeployer, register_deployer
from hil.errors import ConfigError, InfraError
from hil.power import POWER, EmulatorPower, PduCommandPower, PyOcdPower, register_power

PY = sys.executable
# Appends its first argument to the file named by its second: a PDU that keeps a log.
RECORD = "import sys; open(sys.argv[2], 'a').write(sys.argv[1] + '\\n')"


def _spec(field: str, options: dict[str, Any]) -> BackendSpec:
    return BackendSpec(
        Path("lab.toml"), "board 'b0'", f"{field}.", options, "b0", options.get("backend", "")
    )


def _pdu(tmp_path: Path, **extra: Any) -> tuple[PduCommandPower, Path]:
    log = tmp_path / "pdu.log"
    options = {
        "backend": "pdu-command",
        "on": [PY, "-c", RECORD, "on", str(log)],
        "off": [PY, "-c", RECORD, "off", str(log)],
        "off_time": 0,
        **extra,
    }
    power = POWER.create(_spec("power", options))
    assert isinstance(power, PduCommandPower)
    return power, log


def test_pdu_commands_run_as_argv(tmp_path: Path) -> None:
    power, log = _pdu(tmp_path)
    power.power_on()
    power.reset()  # no reset command: off, then on
    power.power_off()
    assert log.read_text().split() == ["on", "off", "on", "off"]


def test_pdu_reset_command_and_no_shell(tmp_path: Path) -> None:
    hostile = "$(touch pwned); `touch pwned` && echo 'x'"
    power, log = _pdu(tmp_path, reset=[PY, "-c", RECORD, hostile, str(tmp_path / "pdu.log")])
    power.reset()
    assert log.read_text() == hostile + "\n"
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


@pytest.mark.parametrize(
    ("argv", "timeout", "expected"),
    [
        (
            [PY, "-c", "import sys; print('relay 3 jammed', file=sys.stderr); sys.exit(4)"],
            10,
            f"board 'b0': power on: command '{PY}' exited 4: relay 3 jammed",
        ),
        (
            [PY, "-c", "import time; time.sleep(10)"],
            0.3,
            f"board 'b0': power on: command '{PY}' still running after 0.3 s",
        ),
        (["no-such-pdu-tool"], 10, "board 'b0': power on: command 'no-such-pdu-tool' not found"),
    ],
)
def test_pdu_failures_are_one_infra_line(argv: list[str], timeout: float, expected: str) -> None:
    power = PduCommandPower.from_spec(
        _spec("power", {"backend": "pdu-command", "on": argv, "off": argv, "timeout": timeout})
    )
    started = time.monotonic()
    with pytest.raises(InfraError) as err:
        power.power_on()
    assert str(err.value) == expected
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"on": "pdu on 3", "off": ["x"]}, "field 'power.on': expected a list, got 'pdu on 3'"),
        ({"on": [], "off": ["x"]}, "field 'power.on': expected a non-empty list of strings"),
        ({"on": ["x", 3], "off": ["x"]}, "field 'power.on': expected a non-empty list of strings"),
        ({"on": ["x"]}, "field 'power.off': missing"),
        ({"on": ["x"], "off": ["x"], "timeout": True}, "field 'power.timeout': expected a number"),
        ({"on": ["x"], "off": ["x"], "outlet": 3}, "field 'power.outlet': unknown key"),
    ],
)
def test_bad_pdu_options(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        POWER.create(_spec("power", {"backend": "pdu-command", **options}))
    assert str(err.value).startswith(f"lab.toml: board 'b0': {expected}")


def test_emulator_is_launched_and_killed(tmp_path: Path) -> None:
    argv = [PY, "-c", "import time; time.sleep(60)"]
    power = EmulatorPower.from_spec(_spec("power", {"backend": "emulator", "argv": argv}))
    power.power_on()
    first = power.pid
    assert first is not None
    power.reset()
    assert power.pid not in (None, first)
    assert not Path(f"/proc/{first}").exists()  # the old one is gone (and reaped)
    started = time.monotonic()
    power.close()
    assert not power.running and time.monotonic() - started < 5


def test_missing_emulator_says_so() -> None:
    power = EmulatorPower("fvp0", ("FVP_Base_RevC-2xAEMvA-not-here",))
    with pytest.raises(InfraError) as err:
        power.power_on()
    assert str(err.value) == (
        "board 'fvp0': emulator 'FVP_Base_RevC-2xAEMvA-not-here' is not installed on this machine"
    )


def test_pyocd_without_a_probe_names_the_board() -> None:
    power = PyOcdPower("mcu0", unique_id="0240000034544e45-not-connected")
    with pytest.raises(InfraError) as err:
        power.reset()
    assert str(err.value).startswith("board 'mcu0': ") and "\n" not in str(err.value)


def _bundle(tmp_path: Path, files: dict[str, bytes]) -> Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    manifest: dict[str, Any] = {"scenario": "s", "board_type": "juno-r2", "files": {}}
    for role, data in files.items():
        (bundle / f"{role}.bin").write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        manifest["files"][role] = {"path": f"{role}.bin", "sha256": digest}
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    return bundle


def test_copy_deployer_copies_and_renames(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, {"fip": b"\x01" * 5000, "bl1": b"bl1 image"})
    dest = tmp_path / "SOFTWARE"
    dest.mkdir()
    deployer = DEPLOY.create(
        _spec("deploy", {"backend": "copy", "dest": str(dest), "names": {"fip": "fip.bin"}})
    )
    deployer.deploy(bundle)
    assert sorted(p.name for p in dest.iterdir()) == ["bl1.bin", "fip.bin"]
    assert (dest / "fip.bin").read_bytes() == b"\x01" * 5000


def test_copy_deployer_refuses_a_corrupt_bundle_or_missing_mount(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, {"fip": b"good"})
    (bundle / "fip.bin").write_bytes(b"bad")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(InfraError, match=r"^board 'b0': bundle file 'fip' \(fip.bin\) does not"):
        CopyDeployer("b0", dest).deploy(bundle)
    assert list(dest.iterdir()) == []
    with pytest.raises(InfraError, match=r"^board 'b0': deploy destination .* \(not mounted\?\)$"):
        CopyDeployer("b0", tmp_path / "unmounted").deploy(bundle)


def test_command_deployer_passes_the_bundle_as_one_argument(tmp_path: Path) -> None:
    odd = tmp_path / "odd dir; $(touch pwned)"
    odd.mkdir()
    bundle = _bundle(odd, {"fip": b"x"})
    out = tmp_path / "args.json"
    script = "import json, sys; json.dump(sys.argv[1:], open(sys.argv[1], 'w'))"
    deployer = DEPLOY.create(
        _spec("deploy", {"backend": "command", "argv": [PY, "-c", script, str(out), "{bundle}"]})
    )
    deployer.deploy(bundle)
    assert json.loads(out.read_text()) == [str(out), str(bundle)]
    assert not (tmp_path / "pwned").exists()


def test_command_deployer_placeholder_must_stand_alone() -> None:
    with pytest.raises(ConfigError) as err:
        CommandDeployer.from_spec(
            _spec("deploy", {"backend": "command", "argv": ["flash", "--dir={bundle}"]})
        )
    assert str(err.value) == (
        "lab.toml: board 'b0': field 'deploy.argv': '--dir={bundle}': {bundle} must be an argv "
        "element of its own"
    )


def test_registration_is_public_and_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The registries are process-wide: the kinds made up here must not leak into other tests.
    monkeypatch.setattr(POWER, "_factories", dict(POWER._factories))
    monkeypatch.setattr(DEPLOY, "_factories", dict(DEPLOY._factories))
    made: list[BackendSpec] = []
    register_power(
        "test-relay", lambda spec: made.append(spec) or PduCommandPower("b0", ("a",), ("b",))
    )
    POWER.create(_spec("power", {"backend": "test-relay", "port": 3}))
    assert made[0].data["port"] == 3
    register_deployer("test-missing", "hil.no_such_module:Deployer")
    with pytest.raises(InfraError) as err:
        DEPLOY.create(_spec("deploy", {"backend": "test-missing"}))
    assert str(err.value) == (
        "board 'b0': deploy back-end 'test-missing' is not available on this machine: "
        "No module named 'hil.no_such_module'"
    )
