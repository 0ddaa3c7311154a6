"""hil's pytest plugin, exercised the way a lab uses it: the example lab suite against virtual
boards, one process and then distributed by board with pytest-xdist."""

import shutil
from pathlib import Path

import pytest

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
    # Each failure says where its captures are and shows the consoles' last lines.
    result.stdout.fnmatch_lines(
        [
            "*- hil vb0 / all-secure -*",
            "capture: */vb0/all-secure",
            "last 25 lines of ns (ns.log):",
            "*HILPROBE end*",
            "last 25 lines of secure (secure.log):",
        ]
    )
    capture = next(line for line in result.outlines if line.startswith("capture: "))
    directory = Path(capture.removeprefix("capture: "))
    assert (directory / "ns.raw").is_file() and (directory / "secure.raw").is_file()


def test_a_failing_console_test_carries_the_console_tail(pytester):
    lab = write_lab(pytester.path, {"vb0": {}})
    pytester.makepyfile(
        test_waits="""
        def test_waits_for_what_never_comes(board, console):
            marks = console.mark()
            board.power.reset()
            console.expect("BL31: Built", timeout=10, since=marks)
            console.expect("a line no board prints", timeout=0.5, since=marks)
        """
    )
    result = pytester.runpytest_subprocess("--lab", str(lab), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*- hil vb0 consoles -*", "capture: */console", "last 25 lines of ns (ns.log):"]
    )
    tail = result.outlines[result.outlines.index("last 25 lines of ns (ns.log):") + 1 :][:25]
    assert any("BL31: Built" in line for line in tail)


def test_a_passing_test_carries_no_console_section(pytester):
    lab = write_lab(pytester.path, {"vb0": {}})
    suite = example_suite(pytester)
    result = pytester.runpytest_subprocess(
        "--lab", str(lab), "-p", "no:cacheprovider", "-rA", str(suite)
    )
    result.assert_outcomes(passed=3)
    assert not [line for line in result.outlines if line.startswith("capture: ")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--board", "juno0"], "ERROR: hil: lab.toml: no board 'juno0'*"),
        (["--board", "vb0", "--lab", "missing.toml"], "ERROR: hil: missing.toml: cannot read*"),
    ],
)
def test_an_unknown_board_or_lab_is_one_line(pytester, args, message):
    write_lab(pytester.path, {"vb0": {}})
    suite = example_suite(pytester)
    result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider", str(suite))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert [line for line in result.stderr.lines if line.strip()] == [
        line for line in result.stderr.lines if line.startswith("ERROR: hil: ")
    ]


def test_the_oracle_fixture_expects_what_the_board_is_built_and_pinned_to(pytester):
    from hil.diff.recording import write_recording

    # vb0: with FF-A VM-to-VM built in, 4.22 answers fpi-size-8 differently, so an oracle that
    # assumed the default build would fail a board that behaves exactly as its Xen should.
    # vb1 is judged against a recording: the fixture must not silently use an oracle profile.
    write_recording(pytester.path / "rec", [], {})
    boards = {"vb0": {"xen_kconfig": ["CONFIG_FFA_VM_TO_VM=y"]}, "vb1": {"expect": "recorded:rec"}}
    lab = write_lab(pytester.path, boards)
    pytester.makepyfile(
        test_oracle="""
        def test_the_guest_sees_what_the_oracle_says(xen_log, oracle):
            expected = oracle("fpi-size-8")
            assert xen_log("fpi-size-8").observation.transcript == expected.transcript
        """
    )
    picked = ["--board", "vb0", "--board", "vb1"]
    result = pytester.runpytest_subprocess("--lab", str(lab), *picked, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["_*[[]vb1[]] _*", "hil: board 'vb1' is judged against recorded:rec, not an oracle*"]
    )
