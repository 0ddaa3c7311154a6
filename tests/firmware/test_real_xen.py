"""The real-Xen tier: each Xen in ../shared/xen (the boards of real-xen.toml), built by hil itself
with the FF-A mediator, boots every shipped scenario on QEMU virt with TF-A + the test SPMC and
the probe as dom0, and must behave as its profile says; the virtual board must show exactly what
real Xen shows. The first run builds each Xen (about 30 s on 2 cores; cached in the build dir).

Without ../shared/xen the tier skips saying so; under HIL_REQUIRE_ALL_TIERS=1 that is a failure."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from hil.case import observe, parse_captures
from hil.cli import main
from hil.compare import observed_text
from hil.firmware import toolchain
from hil.probe import ProbeTranscript
from hil.scenario import SCENARIO_DIR, load_scenarios
from tests.firmware.conftest import REPO, SKIP_REASON
from tests.labs import BOARDS_DIR, toml_value, write_lab

REAL_LAB = REPO / "real-xen.toml"
XEN_SOURCES = Path(os.environ.get("HIL_XEN_SOURCES") or REPO.parent / "shared" / "xen")
SCENARIOS = sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))
# One of each kind of answer: dropped SPs, the v1.2 own entry (dom0's vCPUs), FF-A off (SMCCC
# unknown function), 48-byte descriptors, a v1.0 guest.
EQUALITY_SCENARIOS = ["one-non-secure", "guest-v1-2", "count-64", "v1-3-layout", "duplicate-ids"]
# Cold builds wait on each other's build lock: more than the default per-test timeout.
TIER_TIMEOUT_S = 420

pytestmark = [pytest.mark.qemu, pytest.mark.xen, pytest.mark.timeout(TIER_TIMEOUT_S)]


def shipped_boards() -> dict[str, dict[str, Any]]:
    with REAL_LAB.open("rb") as f:
        return {b["name"]: b for b in tomllib.load(f)["board"]}


BOARDS = shipped_boards()


@pytest.fixture(scope="module", autouse=True)
def _tier() -> None:
    if toolchain.missing():
        pytest.skip(SKIP_REASON)
    if not XEN_SOURCES.is_dir():
        pytest.skip(
            f"no Xen sources at {XEN_SOURCES}: the real-Xen tier needs ../shared/xen "
            "(or HIL_XEN_SOURCES pointing at a copy)"
        )


def archive_sha256() -> dict[str, str]:
    lines = (XEN_SOURCES / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def real_lab(directory: Path, name: str, **extra: Any) -> Path:
    """A lab with the shipped board ``name``, its Xen taken from :data:`XEN_SOURCES`."""
    board = {**BOARDS[name], **extra}
    board["xen_src"] = str(XEN_SOURCES / Path(board["xen_src"]).name)
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        f"boards_dir = {toml_value(str(BOARDS_DIR))}",
        f"results_dir = {toml_value(str(directory / 'results'))}",
        "boot_attempts = 2",
        "[[board]]",
        *(f"{key} = {toml_value(value)}" for key, value in board.items()),
    ]
    lab = directory / "lab.toml"
    lab.write_text("\n".join(lines) + "\n")
    return lab


def run(lab: Path, *argv: str) -> tuple[int, Path, dict[str, dict[str, Any]]]:
    code = main(["run", "--lab", str(lab), *argv])
    run_dir = (lab.parent / "results" / "latest").resolve()
    cases = json.loads((run_dir / "summary.json").read_text())["run"]["cases"]
    return code, run_dir, {c["scenario"]: c for c in cases}


def test_the_shipped_lab_has_one_board_per_archive() -> None:
    archives = {Path(b["xen_src"]).name for b in BOARDS.values()}
    assert archives == set(archive_sha256())
    assert all(b["xen_src"].startswith("../shared/xen/") for b in BOARDS.values())


@pytest.mark.parametrize("name", list(BOARDS))
def test_every_scenario_passes_on_real_xen(tmp_path: Path, name: str) -> None:
    code, run_dir, cases = run(real_lab(tmp_path, name))
    failed = {s: c["message"] for s, c in cases.items() if c["verdict"] != "pass"}
    assert (code, failed) == (0, {})
    assert sorted(cases) == SCENARIOS

    archive = Path(BOARDS[name]["xen_src"]).name
    first = cases[SCENARIOS[0]]
    provenance = first["provenance"]
    assert provenance["xen:source"] == f"sha256:{archive_sha256()[archive]}"
    ns = (run_dir / first["artifacts"]["console:ns:raw"]).read_text("ascii", "replace")
    assert f"Xen version {provenance['xen:version']} (hil@hil)" in ns
    junit = (run_dir / "junit.xml").read_text()
    assert f'name="xen:config_sha256" value="{provenance["xen:config_sha256"]}"' in junit


def observations(run_dir: Path, board: str) -> dict[str, tuple[list[str], ProbeTranscript]]:
    """Per scenario: Xen's FF-A lines and the probe's lines as a check compares them."""
    out = {}
    for scenario in load_scenarios(names=EQUALITY_SCENARIOS):
        observed = observe(parse_captures(run_dir / board / scenario.name, ("ns",)), "ns")
        out[scenario.name] = (observed_text(observed, scenario.probe_plan()), observed.transcript)
    return out


@pytest.mark.parametrize(
    ("name", "vcpus"), [(name, 1) for name in BOARDS] + [("xen-4.22", 2)], ids=str
)
def test_the_virtual_board_shows_what_real_xen_shows(tmp_path: Path, name: str, vcpus: int) -> None:
    scenarios = [f"--scenario={s}" for s in EQUALITY_SCENARIOS]
    profile = BOARDS[name]["xen_profile"]
    real_lab_file = real_lab(tmp_path / "real", name, xen_dom0_vcpus=vcpus)
    real_code, real_dir, _ = run(real_lab_file, *scenarios)
    virtual = {"virtual0": {"xen_profile": profile, "xen_dom0_vcpus": vcpus}}
    virtual_code, virtual_dir, _ = run(write_lab(tmp_path / "virtual", virtual), *scenarios)
    assert real_code == virtual_code == 0

    seen = observations(real_dir, name)
    modelled = observations(virtual_dir, "virtual0")
    for scenario in EQUALITY_SCENARIOS:
        assert seen[scenario][0] == modelled[scenario][0], scenario
    # The own entry a v1.2 guest gets on 4.22 carries dom0's vCPU count: the board's, as booted.
    if profile == "xen-4.22":
        own = seen["guest-v1-2"][1].partinfo[1].reply.rx[48:52]
        assert own == bytes([0x01, 0x00, vcpus, 0x00])
