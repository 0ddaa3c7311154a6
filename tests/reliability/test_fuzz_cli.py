"""Malformed lab.toml, boards/*.toml, scenario files and console logs through the CLI: a bad file
is exit 2 with one stderr line naming it (and the field or line), never a traceback, never a
summary.json claiming success; ``hil triage`` reads any bytes."""

from __future__ import annotations

import re
import shutil
import string
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.cli import main
from hil.scenario import SCENARIO_DIR
from tests.reliability.support import BOARDS_DIR, toml_value

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# A board nobody can reach: a valid lab and scenario make a quick infra error, not a boot.
UNREACHABLE = {"backend": "virtual", "control": "127.0.0.1:1", "timeout": 1}
VALID_BOARD: dict[str, Any] = {
    "name": "b0",
    "type": "virtual",
    "xen_profile": "xen-4.22",
    "consoles": {"ns": "socket://127.0.0.1:1"},
    "power": UNREACHABLE,
    "deploy": UNREACHABLE,
    "tags": ["ci"],
    "timeouts": {"xen": 1.0},
}
# How an error line says where in the file: a field, a TOML position, a byte, a board or table.
WHERE = re.compile(r"field '|line \d+|byte \d+|board '|\[\d+\]|partition|: no ")
VALID_LAB: dict[str, Any] = {"boot_attempts": 1, "reconnect_attempts": 1, "xen_profile": "xen-4.22"}

scalars = st.one_of(
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=20),
    st.lists(st.text(string.printable, max_size=5), max_size=2),
    st.dictionaries(
        st.text(string.ascii_lowercase, min_size=1, max_size=5), st.integers(), max_size=2
    ),
)


def toml_text(top: dict[str, Any], boards: list[dict[str, Any]]) -> str:
    # Floats TOML cannot spell (nan, inf) go through as the bare words TOML does accept.
    text = "".join(f"{k} = {_value(v)}\n" for k, v in top.items())
    for board in boards:
        text += "\n[[board]]\n" + "".join(f"{k} = {_value(v)}\n" for k, v in board.items())
    return text


def _value(value: Any) -> str:
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return toml_value(value)


@st.composite
def broken_labs(draw: st.DrawFn) -> str:
    """A valid lab with one thing changed: a field's value, a field removed, or added."""
    top, board = dict(VALID_LAB), dict(VALID_BOARD)
    target = draw(st.sampled_from([top, board]))
    key = draw(st.sampled_from([*sorted(target), "bogus", "boards_dir", "results_dir"]))
    if draw(st.booleans()) and key in target:
        del target[key]
    else:
        target[key] = draw(scalars)
    return toml_text(top, [board])


@st.composite
def byte_damage(draw: st.DrawFn, text: str) -> bytes:
    """``text`` with a few bytes overwritten or inserted anywhere."""
    data = bytearray(text.encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        junk = draw(st.binary(min_size=1, max_size=6))
        data[at : at + draw(st.integers(0, 3))] = junk
    return bytes(data)


@contextmanager
def workspace() -> Iterator[Path]:
    """A fresh directory per example (hypothesis reuses the test's fixtures across examples)."""
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        shutil.copytree(BOARDS_DIR, root / "boards")
        shutil.copytree(SCENARIO_DIR, root / "scenarios")
        yield root


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_one_line_error(err: str, file: Path, code: int, root: Path) -> None:
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert file.name in lines[0], lines[0]
    assert WHERE.search(lines[0]), f"names no field or line: {lines[0]}"
    assert "Traceback" not in err
    assert not any(root.rglob("summary.json")), "a summary was written for a bad input"


def run_argv(root: Path, lab: Path) -> list[str]:
    return [
        "run",
        "--lab",
        str(lab),
        "--results",
        str(root / "results"),
        "--scenarios-dir",
        str(root / "scenarios"),
        "--scenario",
        "all-secure",
    ]


@FUZZ
@given(st.one_of(broken_labs(), byte_damage(toml_text(VALID_LAB, [VALID_BOARD]))))
def test_broken_lab_file(capsys: pytest.CaptureFixture[str], text: str | bytes) -> None:
    with workspace() as root:
        lab = root / "lab.toml"
        lab.write_bytes(text if isinstance(text, bytes) else text.encode())
        for argv in (["boards", "--lab", str(lab)], run_argv(root, lab)):
            code, err = cli(capsys, *argv)
            if code == 2:
                assert_one_line_error(err, lab, code, root)
            else:
                # The change left a valid lab (e.g. no power table: hil launches the board).
                assert code in (0, 1, 3), err


@FUZZ
@given(st.data())
def test_broken_board_type_file(capsys: pytest.CaptureFixture[str], data: st.DataObject) -> None:
    with workspace() as root:
        board_type = root / "boards" / "virtual.toml"
        board_type.write_bytes(data.draw(byte_damage(board_type.read_text())))
        lab = root / "lab.toml"
        lab.write_text(toml_text({**VALID_LAB, "boards_dir": str(root / "boards")}, [VALID_BOARD]))
        code, err = cli(capsys, "boards", "--lab", str(lab))
        if code != 0:
            assert_one_line_error(err, board_type, code, root)


@FUZZ
@given(st.data())
def test_broken_scenario_file(capsys: pytest.CaptureFixture[str], data: st.DataObject) -> None:
    with workspace() as root:
        scenario = root / "scenarios" / "all-secure.toml"
        scenario.write_bytes(data.draw(byte_damage(scenario.read_text())))
        lab = root / "lab.toml"
        lab.write_text(toml_text({**VALID_LAB, "boards_dir": str(root / "boards")}, [VALID_BOARD]))
        code, err = cli(capsys, *run_argv(root, lab))
        if code == 2:
            assert_one_line_error(err, scenario, code, root)
        else:
            assert code == 3, err  # still a valid scenario: the unreachable board's infra error


@FUZZ
@given(st.binary(max_size=4096))
def test_triage_reads_any_bytes(capsys: pytest.CaptureFixture[str], blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as name:
        log = Path(name) / "console.log"
        log.write_bytes(blob)
        code, err = cli(capsys, "triage", str(log))
        assert code in (0, 1, 3), err  # 3: no evidence (most random bytes)
        assert err == ""


def test_triage_of_a_missing_log_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = cli(capsys, "triage", "/nonexistent/console.log")
    assert code == 2
    assert err.count("\n") == 1 and "console.log" in err
