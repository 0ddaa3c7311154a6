"""`hil run` through labgrid: virtual boards exported as places on a loopback coordinator
(tests/labgrid_virtual.py); the run leases each place, boots through its consoles, releases it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.cli import main
from hil.labgrid import LabgridClient
from tests.labgrid_lab import LABGRID_TIER
from tests.labgrid_virtual import VirtualPlaces, place_of, virtual_places

pytestmark = LABGRID_TIER

OTHER = {"LG_USERNAME": "bob", "LG_HOSTNAME": "otherhost"}
BOARD = "vb0"


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualPlaces]:
    with virtual_places(tmp_path_factory.mktemp("lgrun"), [BOARD], stage_delay=0.05) as lab:
        yield lab


def hil_run(lab_toml: Path, *argv: str) -> tuple[int, list[dict]]:
    code = main(["run", "--lab", str(lab_toml), *argv])
    (run_dir,) = sorted((lab_toml.parent / "results").iterdir())[-1:]
    summary = json.loads((run_dir / "summary.json").read_text())
    return code, summary["run"]["cases"]


def test_run_leases_the_place_boots_through_its_consoles_and_releases(
    places: VirtualPlaces, tmp_path: Path
) -> None:
    lab = places.write_lab(tmp_path, through_labgrid=True)
    code, cases = hil_run(lab, "--scenario", "one-non-secure")
    assert [(c["board"], c["verdict"]) for c in cases] == [(BOARD, "pass")]
    assert code == 0
    # The capture came through the place's resources: both consoles were recorded.
    assert {"console:ns:raw", "console:secure:raw"} <= set(cases[0]["artifacts"])
    assert places.place_holder(BOARD) is None


def test_place_held_elsewhere_is_not_run_and_wait_gets_it(
    places: VirtualPlaces, tmp_path: Path
) -> None:
    other = LabgridClient(BOARD, place_of(BOARD), places.coordinator, env=OTHER)
    other.run("acquire")
    releaser = threading.Timer(1.0, other.run, ("release",))
    try:
        lab = places.write_lab(tmp_path, through_labgrid=True)
        code, cases = hil_run(lab, "--scenario", "one-non-secure", "--scenario", "all-secure")
        assert {c["verdict"] for c in cases} == {"not_run"}
        assert {c["message"] for c in cases} == {f"board {BOARD} is acquired by bob@otherhost"}
        assert code != 0
        releaser.start()
        code, cases = hil_run(lab, "--scenario", "one-non-secure", "--wait", "20")
        assert [c["verdict"] for c in cases] == ["pass"]
    finally:
        if releaser.ident is None:
            other.run("release")
        releaser.join()
    assert places.place_holder(BOARD) is None


def test_exporter_restart_mid_run_never_fails_and_releases(
    places: VirtualPlaces, tmp_path: Path
) -> None:
    lab = places.write_lab(tmp_path, through_labgrid=True)
    restart = threading.Timer(0.5, places.restart_exporter)
    restart.start()
    try:
        _, cases = hil_run(lab, "--scenario", "one-non-secure", "--scenario", "all-secure")
    finally:
        restart.join()
    assert {c["verdict"] for c in cases} <= {"pass", "infra_error"}, cases
    assert places.place_holder(BOARD) is None
    # And the place is usable again afterwards.
    code, cases = hil_run(lab, "--scenario", "one-non-secure")
    assert ([c["verdict"] for c in cases], code) == (["pass"], 0)
