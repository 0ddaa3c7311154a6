import dataclasses

from hil.compare import Observation, compare
from hil.scenario import load_scenarios
from hil.xen.oracle import expect


def observation_from(expectation) -> Observation:
    """What a board running exactly ``expectation``'s Xen would show."""
    return Observation([line.text for line in expectation.boot.lines], expectation.transcript)


def scenario(name: str):
    return load_scenarios(names=[name])[0]


def test_board_behaving_as_the_profile_gives_no_diff():
    s = scenario("one-non-secure")
    expected = expect("xen-4.22", s.spmc_config(), s.probe_plan())
    assert compare(expected, observation_from(expected), s.probe_plan()) == []


def test_profile_mismatch_gives_a_readable_diff():
    s = scenario("one-non-secure")
    on_422 = expect("xen-4.22", s.spmc_config(), s.probe_plan())
    on_421 = expect("xen-4.21", s.spmc_config(), s.probe_plan())
    diff = compare(on_421, observation_from(on_422), s.probe_plan())
    assert diff[0] == "--- expected (xen-4.21)"
    assert diff[1] == "+++ observed"
    # 4.21 announces mediator 1.1; the board is a 4.22 announcing 1.2.
    assert "-(XEN) ARM FF-A Mediator version 1.1" in diff
    assert "+(XEN) ARM FF-A Mediator version 1.2" in diff
    # The guest's Nil count differs: 4.21 counts the SP without bit 15, 4.22 does not.
    removed = [line for line in diff if line.startswith("-HILPROBE partinfo q=0 ")]
    added = [line for line in diff if line.startswith("+HILPROBE partinfo q=0 ")]
    assert removed and "w2=0x00000002" in removed[0]
    assert added and "w2=0x00000001" in added[0]


def test_a_missing_probe_end_is_a_difference():
    s = scenario("all-secure")
    expected = expect("xen-4.22", s.spmc_config(), s.probe_plan())
    cut_short = dataclasses.replace(expected.transcript, complete=False)
    observed = Observation([line.text for line in expected.boot.lines], cut_short)
    assert "-HILPROBE end" in compare(expected, observed, s.probe_plan())
