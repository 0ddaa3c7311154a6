"""Exit codes hold at the edges: a run that would check nothing, a bad option or a broken
machine is one line and the right code (2 usage/config, 3 infrastructure), before any board is
touched when it can be known then; never a traceback, never exit 0 or 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.cli import main
from tests.reliability.support import hil_run, write_lab


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_one_line(err: str, *words: str) -> None:
    assert err.count("\n") == 1 and err.startswith("hil: error: "), err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("kind", ["missing", "empty", "a file"])
def test_a_scenarios_dir_with_nothing_to_run_is_exit_2_before_any_board(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    lab = write_lab(tmp_path / "lab")
    scenarios = tmp_path / "scenarios"
    if kind == "empty":
        scenarios.mkdir()
    elif kind == "a file":
        scenarios.write_text("")
    results = tmp_path / "results"
    code, err = cli(
        capsys, "run", "--lab", str(lab), "--results", str(results), "--scenarios-dir",
        str(scenarios),
    )  # fmt: skip
    assert code == 2
    assert_one_line(err, "scenarios directory", str(scenarios))
    assert not results.exists(), "a board was touched for a run of nothing"


@pytest.mark.parametrize("wait", ["nan", "inf", "-1", "1e9"])
def test_an_absurd_wait_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], wait: str
) -> None:
    lab = write_lab(tmp_path / "lab")
    results = tmp_path / "results"
    code, err = cli(capsys, "run", "--lab", str(lab), "--results", str(results), "--wait", wait)
    assert code == 2
    assert_one_line(err, "--wait")
    assert not results.exists()


def test_repeated_boards_and_scenarios_run_once(tmp_path: Path) -> None:
    lab = write_lab(tmp_path / "lab")
    out = hil_run(
        lab, tmp_path / "results", "--board", "v0", "--board", "v0",
        scenarios=("all-secure", "all-secure", "all-sec*"),
    )  # fmt: skip
    assert out.exit_code == 0
    assert [(c["board"], c["scenario"]) for c in out.cases] == [("v0", "all-secure")]
