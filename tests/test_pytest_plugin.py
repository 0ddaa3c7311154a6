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


def test_the_oracle_fixture_refuses_to_guess_for_a_board_pinned_to_a_recording(pytester):
    from hil.diff.recording import write_recording

    # The board is judged against a recording: the fixture must not silently use a profile.
    write_recording(pytester.path / "rec", [], {})
    lab = write_lab(pytester.path, {"vb1": {"expect": "recorded:rec"}})
    pytester.makepyfile(
        test_oracle="""
        def test_pinned(oracle):
            oracle("fpi-size-8")
        """
    )
    result = pytester.runpytest_subprocess("--lab", str(lab), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["hil: board 'vb1' is judged against recorded:rec, not an oracle*"])


def test_fixtures_give_the_judged_boot_and_the_booted_xens_oracle(pytester):
    # vb0 reboots during its first probe (hil retries: PASS) and boots dom0 with 2 vCPUs (a v1.2
    # guest's own entry says so); vb1 stalls in the probe: hil cannot judge it.
    timeouts = {"bl1": 3, "bl2": 3, "bl31": 3, "spmc": 3, "xen": 3, "ffa": 3, "probe": 0.5}
    reboot = {"reboot": {"stage": "probe", "line": 3}}
    lab = write_lab(
        pytester.path,
        {
            "vb0": {"xen_dom0_vcpus": 2, "power": {"faults": reboot}},
            "vb1": {"timeouts": timeouts, "power": {"faults": {"stall": {"stage": "probe"}}}},
        },
        boot_attempts=1,
    )
    pytester.makepyfile(
        test_lab="""
        from hil.xen.log import MessageKey, XenMessage

        def test_one_non_secure(xen_log, oracle):
            booted = xen_log("one-non-secure")
            dropped = [e.fields["id"] for e in booted.events
                       if isinstance(e, XenMessage) and e.key is MessageKey.SP_UNUSABLE]
            assert (booted.case.attempts, dropped) == (1, [0x42])

        def test_guest_v1_2(xen_log, oracle):
            booted = xen_log("guest-v1-2")
            assert booted.observation.transcript == oracle("guest-v1-2").transcript
        """
    )
    args = ("--lab", str(lab), "-p", "no:cacheprovider", "--board", "vb0", "--board", "vb1")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*NotJudged: hil vb1 / one-non-secure: not judged: *probe*"])
    assert "[vb0" not in "".join(line for line in result.outlines if line.startswith("FAILED"))


def test_a_second_boot_of_a_scenario_in_one_test_is_never_handed_the_firsts_evidence(tmp_path):
    # xen_log booting one scenario twice in one test: both cases share a directory. The second
    # boot panics (no judged window of its own); what xen_log hands over must be that boot, with
    # its panic, never the first boot's judged window left in the directory.
    from hil.boot import RetryPolicy
    from hil.case import CaseSettings, run_case
    from hil.lab import load_lab
    from hil.pytest_plugin import _judged
    from hil.results import Verdict
    from hil.scenario import load_scenarios
    from hil.session import BoardSession

    lab = load_lab(write_lab(tmp_path, {"vb0": {}}, boot_attempts=1))
    settings = CaseSettings(None, RetryPolicy(attempts=1), lab.reconnect, {})
    (scenario,) = load_scenarios(names=["one-non-secure"])
    panic = {"text": {"stage": "probe", "text": "(XEN) Panic on CPU 0:\r\n"}}
    with BoardSession(lab.board("vb0"), tmp_path / ".board") as session:
        assert run_case(session, scenario, tmp_path, settings).verdict is Verdict.PASS
        session.launched._running().control.set_faults(panic)  # type: ignore[union-attr]
        assert run_case(session, scenario, tmp_path, settings).verdict is Verdict.FAIL
        events, _ = _judged(tmp_path / "vb0" / "one-non-secure", session)
    assert any(getattr(e, "key", None) == "panic" for e in events)
