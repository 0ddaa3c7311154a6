"""One soak iteration (bench.soak) as a test: 48 cases on four faulty boards, every verdict the
expected one, no byte lost, and the report machinery itself works."""

from __future__ import annotations

import pytest

from bench.soak import BOARDS, soak
from hil.scenario import load_scenarios


@pytest.mark.slow
def test_one_soak_iteration_is_exact() -> None:
    report = soak(iterations=1, seed=11)
    assert report.cases == len(BOARDS) * len(load_scenarios())
    assert report.wrong == []
    assert report.bytes_sent > 0 and report.bytes_lost == 0
    assert len(report.faults) == 1 and set(report.faults[0]) == set(BOARDS)
