"""Exit codes hold at the edges: a run that would check nothing, a bad option or a broken
machine is one line and the right code (2 usage/config, 3 infrastructure), before any board is
touched when it can be known then; never a traceback, never exit 0 or 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


@pytest.mark.parametrize("kind", ["fifo", "nested"])
def test_a_rerun_summary_that_is_a_fifo_or_too_deep_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """--rerun-failed reads an earlier run's summary.json: a FIFO there must not hang the run,
    JSON nested too deeply must not be a RecursionError traceback."""
    lab = write_lab(tmp_path / "lab")
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    if kind == "fifo":
        os.mkfifo(earlier / "summary.json")
    else:
        (earlier / "summary.json").write_text("[" * 100_000 + "]" * 100_000)
    code, err = cli(capsys, "run", "--lab", str(lab), "--rerun-failed", str(earlier))
    assert code == 2
    assert_one_line(err, "summary.json")
    assert "not a regular file" in err if kind == "fifo" else "nested too deeply" in err


def test_a_reader_that_goes_away_changes_no_verdict(tmp_path: Path) -> None:
    """hil run | head -1: the run still checks every case, writes its reports and exits with
    their code (it used to stop its boards on the broken pipe and exit 0 with no report)."""
    lab = write_lab(tmp_path / "lab")
    results = tmp_path / "results"
    argv = [sys.executable, "-m", "hil", "run", "--lab", str(lab), "--results", str(results)]
    argv += ["--scenario", "all-secure", "--scenario", "zero-sps", "--scenario", "one-non-secure"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline()
    process.stdout.close()  # head -1 has what it wanted
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert err == b""
    (run_dir,) = [p for p in results.iterdir() if not p.is_symlink()]
    document = json.loads((run_dir / "summary.json").read_text())
    assert document["counts"]["pass"] == 3 and document["exit_code"] == 0


# One boot of each verdict, repeated: enough boots that `hil triage --json` writes far more than a
# pipe holds, so its writes meet a reader that went away.
_DROPPED_SP = (
    b"NOTICE:  Booting Trusted Firmware\n(XEN) Xen version 4.21.0 (ci@lab) (gcc 12.2) debug=n\n"
    b"(XEN) ARM FF-A Mediator version 1.1\n(XEN) ARM FF-A Firmware version 1.2\n"
    b"(XEN) ffa: Secure partition with id 0x0001 cannot be used\n"
    b"(XEN) Using TEE mediator for FF-A\n"
)
_NO_FFA = (
    b"NOTICE:  Booting Trusted Firmware\n(XEN) Xen version 4.22.0 (ci@lab) (gcc 12.2) debug=n\n"
)


@pytest.mark.parametrize(
    ("output", "boot", "code"),
    [(["--json"], _DROPPED_SP, 1), (["--json"], _NO_FFA, 3), ([], _DROPPED_SP, 1)],
    # (The table of a log with no evidence is its one line: nothing is left to write once the
    # reader has it.)
    ids=["json-violation", "json-no-evidence", "table-violation"],
)
def test_triage_piped_into_head_exits_with_its_verdict(
    tmp_path: Path, output: list[str], boot: bytes, code: int
) -> None:
    """hil triage LOG | head: the reader leaving is not the log being clean (it used to exit 0
    through hil.cli's broken-pipe handler, whatever the log showed)."""
    log = tmp_path / "nightly.log"
    log.write_bytes(boot * 3000)
    argv = [sys.executable, "-m", "hil", "triage", *output, str(log)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.read(20)
    process.stdout.close()  # head -c 20 has what it wanted
    _, err = process.communicate(timeout=120)
    assert (process.returncode, err) == (code, b"")


def test_check_piped_into_head_exits_with_its_verdict(tmp_path: Path) -> None:
    """hil check BOARD | head -1: the board's Xen behaves as 4.21, the lab expects 4.22 (a FAIL);
    the reader leaving after the first line used to make that exit 0."""
    power = {"backend": "virtual", "stage_delay": 0, "xen": "xen-4.21"}
    lab = write_lab(tmp_path / "lab", extra={"power": power, "xen_profile": "xen-4.22"})
    argv = [sys.executable, "-m", "hil", "check", "v0", "--lab", str(lab)]
    argv += ["--scenario", "several-non-secure", "--results", str(tmp_path / "results")]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline()
    process.stdout.close()  # head -1 has what it wanted
    _, err = process.communicate(timeout=120)
    assert (process.returncode, err) == (1, b"")
