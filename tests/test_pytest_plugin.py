"""hil's pytest plugin, exercised the way a lab uses it: the example lab suite against virtual
boards, one process and then distributed by board with pytest-xdist."""

import shutil
from pathlib import Path

from tests.labs import write_lab

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lab-tests"


def example_suite(pytester) -> Path:
    target = pytester.path / "lab-tests"
    shutil.copytree(EXAMPLE, target)
    return target


def test_fixtures_boot_scenarios_and_compare_with_the_oracle(pytester):
    lab = write_lab(pytester.path, {"vb0": {}})
    suite = example_suite(pytester)
    result = pytester.runpytest_subprocess("--lab", str(lab), "-p", "no:cacheprovider", str(suite))
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*3 passed*"])


def test_each_test_runs_once_per_board_and_xdist_groups_by_board(pytester):
    lab = write_lab(pytester.path, {"vb0": {}, "vb1": {}})
    suite = example_suite(pytester)
    result = pytester.runpytest_subprocess(
        "--lab",
        str(lab),
        "--board",
        "vb0",
        "--board",
        "vb1",
        "-n",
        "2",
        "--dist",
        "loadgroup",
        "-v",
        "-p",
        "no:cacheprovider",
        str(suite),
    )
    result.assert_outcomes(passed=6)
    lines = [line for line in result.outlines if "PASSED" in line and "[" in line]
    workers_by_board: dict[str, set[str]] = {}
    for line in lines:
        worker = line.split("]")[0].lstrip("[")
        board = "vb0" if "[vb0" in line else "vb1"
        workers_by_board.setdefault(board, set()).add(worker)
    assert all(len(workers) == 1 for workers in workers_by_board.values()), workers_by_board


def test_a_board_that_misbehaves_fails_the_lab_suite(pytester):
    # The board runs Xen 4.21 while the lab declares 4.22: the suite must go red.
    lab = write_lab(pytester.path, {"vb0": {"power": {"xen": "xen-4.21"}}})
    suite = example_suite(pytester)
    result = pytester.runpytest_subprocess("--lab", str(lab), "-p", "no:cacheprovider", str(suite))
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*-(XEN) ARM FF-A Mediator version 1.2*"])
