"""The real-Xen tier: each Xen in ../shared/xen (the boards of real-xen.toml), built by hil itself
with the FF-A mediator, boots every shipped scenario on QEMU virt with TF-A + the test SPMC and
the probe as dom0, and must behave as its profile says; the virtual board must show exactly what
real Xen shows.

The whole lab runs once per test session (``hil run --lab real-xen.toml -j 2``, the first run
building each Xen, about 30 s each on 2 cores, cached in the build dir); every test here reads that
run, so no scenario boots twice. Without ../shared/xen the tier skips saying so; under
HIL_REQUIRE_ALL_TIERS=1 that is a failure.

A case that Xen's own panic() ended (hil says "Xen panicked on CPU n: <reason>") is re-run once,
alone, and reported as a warning naming the case, the reason and the run: Xen's debug builds can
hit ASSERT(!cpu_online(old_cpu)) in migrate_timers_from_cpu() (common/timer.c) when CPU1 comes
online just after the 1 s bring-up deadline in arch/arm/smpboot.c, a race an overloaded host can
cause. It is Xen's bug, not the firmware's: never a pass, never silent, and a second panic fails."""

from __future__ import annotations

import json
import os
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hil.case import XEN_PANICKED, observe, parse_captures
from hil.cli import main
from hil.compare import observed_text
from hil.firmware import toolchain
from hil.probe import ProbeTranscript
from hil.scenario import SCENARIO_DIR, load_scenarios
from tests.firmware.conftest import REPO, SKIP_REASON, once_per_session
from tests.labs import BOARDS_DIR, toml_value, write_lab

REAL_LAB = REPO / "real-xen.toml"
XEN_SOURCES = Path(os.environ.get("HIL_XEN_SOURCES") or REPO.parent / "shared" / "xen")
SCENARIOS = sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))
# One of each kind of answer: dropped SPs, the v1.2 own entry (dom0's vCPUs), FF-A off (SMCCC
# unknown function), 48-byte descriptors, a v1.0 guest.
EQUALITY_SCENARIOS = [
    "one-non-secure",
    "guest-v1-2",
    "count-64",
    "v1-3-layout",
    "duplicate-ids",
    "no-partinfo-get",  # the virtual board reads `unsupported` as the real SPMC does
]
# The first test to ask for the lab's run waits for all of it: four cold Xen builds and 88 boots.
TIER_TIMEOUT_S = 900

pytestmark = [pytest.mark.qemu, pytest.mark.xen, pytest.mark.timeout(TIER_TIMEOUT_S)]


def shipped_boards() -> dict[str, dict[str, Any]]:
    with REAL_LAB.open("rb") as f:
        return {b["name"]: b for b in tomllib.load(f)["board"]}


BOARDS = shipped_boards()


def dom0_vcpus(name: str) -> int:
    return int(BOARDS[name].get("xen_dom0_vcpus", 1))


@pytest.fixture(scope="module", autouse=True)
def _tier() -> None:
    require_real_xen()


def require_real_xen() -> None:
    """Skip, saying how to get it, unless the QEMU toolchain and ../shared/xen are here."""
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


def real_lab(directory: Path, *names: str, **extra: Any) -> Path:
    """real-xen.toml as shipped (only the boards ``names``, when given; each with ``extra``
    keys), its Xen archives taken from :data:`XEN_SOURCES`."""
    lines = [
        f"boards_dir = {toml_value(str(BOARDS_DIR))}",
        f"results_dir = {toml_value(str(directory / 'results'))}",
        "boot_attempts = 2",
    ]
    for name in names or BOARDS:
        board = {**BOARDS[name], **extra}
        board["xen_src"] = str(XEN_SOURCES / Path(board["xen_src"]).name)
        lines += ["[[board]]", *(f"{key} = {toml_value(value)}" for key, value in board.items())]
    directory.mkdir(parents=True, exist_ok=True)
    lab = directory / "lab.toml"
    lab.write_text("\n".join(lines) + "\n")
    return lab


Case = dict[str, Any]  # a summary.json case, plus "run_dir": the run it comes from


def run_lab(lab: Path, *argv: str) -> tuple[int, dict[tuple[str, str], Case]]:
    """``hil run`` on ``lab``: its exit code and cases by (board, scenario)."""
    code = main(["run", "--lab", str(lab), *argv])
    run_dir = (lab.parent / "results" / "latest").resolve()
    cases = json.loads((run_dir / "summary.json").read_text())["run"]["cases"]
    return code, {(c["board"], c["scenario"]): {**c, "run_dir": str(run_dir)} for c in cases}


def run(lab: Path, *argv: str) -> tuple[int, Path, dict[str, Case]]:
    """``hil run`` on a one-board lab: its exit code, run directory and cases by scenario."""
    code, cases = run_lab(lab, *argv)
    run_dir = (lab.parent / "results" / "latest").resolve()
    return code, run_dir, {scenario: case for (_, scenario), case in cases.items()}


class XenPanicked(UserWarning):
    """Xen's own panic() ended a case on real Xen; it passed when re-run (the message says)."""


@dataclass(frozen=True)
class RealRun:
    """The lab's run: each case's final result, and the Xen panics that were re-run."""

    code: int  # hil run's exit code for the whole lab
    cases: dict[tuple[str, str], Case]
    reruns: list[str]  # one line per case Xen panicked in, with its re-run's verdict
    rerun_codes: list[int]

    def board(self, name: str) -> dict[str, Case]:
        return {s: c for (b, s), c in self.cases.items() if b == name}

    def case_dir(self, board: str, scenario: str) -> Path:
        return Path(self.cases[board, scenario]["run_dir"]) / board / scenario


def run_the_lab(directory: Path) -> RealRun:
    lab = real_lab(directory)
    code, cases = run_lab(lab, "-j", "2")
    reruns, rerun_codes = [], []
    for (board, scenario), case in sorted(cases.items()):
        if case["verdict"] == "fail" and case["message"].startswith(XEN_PANICKED):
            again_code, again = run_lab(lab, f"--board={board}", f"--scenario={scenario}")
            redo = cases[board, scenario] = again[board, scenario]
            rerun_codes.append(again_code)
            reruns.append(
                f"{board} {scenario}: {case['message']} (run {case['run_dir']}); "
                f"re-run: {redo['verdict']} (run {redo['run_dir']})"
            )
    return RealRun(code, cases, reruns, rerun_codes)


@pytest.fixture(scope="session")
def real_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> RealRun:
    """The lab's one run, shared by the xdist workers of this session: the first one to get here
    runs it, the other waits for it and reads it."""

    def run_lab_once(shared: Path) -> dict[str, Any]:
        result = run_the_lab(shared)
        for line in result.reruns:  # reported once, by the worker that saw it
            warnings.warn(XenPanicked(line), stacklevel=1)
        cases = [{"key": list(k), "case": c} for k, c in result.cases.items()]
        return {**result.__dict__, "cases": cases}

    data = once_per_session(tmp_path_factory, worker_id, "real-xen", run_lab_once)
    data["cases"] = {tuple(c["key"]): c["case"] for c in data["cases"]}
    return RealRun(**data)


def test_the_shipped_lab_has_one_board_per_archive() -> None:
    archives = {Path(b["xen_src"]).name for b in BOARDS.values()}
    assert archives == set(archive_sha256())
    assert all(b["xen_src"].startswith("../shared/xen/") for b in BOARDS.values())
    # The 4.22 behaviour is checked with dom0 at 1 and at 2 vCPUs (the v1.2 own entry).
    assert {dom0_vcpus(n) for n, b in BOARDS.items() if b["xen_profile"] == "xen-4.22"} == {1, 2}


@pytest.mark.parametrize("name", list(BOARDS))
def test_every_scenario_passes_on_real_xen(real_run: RealRun, name: str) -> None:
    cases = real_run.board(name)
    failed = {s: c["message"] for s, c in cases.items() if c["verdict"] != "pass"}
    assert failed == {}
    assert sorted(cases) == SCENARIOS
    # hil run said so too: exit 0, or 1 for exactly the cases Xen panicked in, each then passing.
    assert (real_run.code, real_run.rerun_codes) in ((0, []), (1, [0] * len(real_run.reruns)))

    archive = Path(BOARDS[name]["xen_src"]).name
    first = cases[SCENARIOS[0]]
    provenance = first["provenance"]
    assert provenance["xen:source"] == f"sha256:{archive_sha256()[archive]}"
    run_dir = Path(first["run_dir"])
    ns = (run_dir / first["artifacts"]["console:ns:raw"]).read_text("ascii", "replace")
    assert f"Xen version {provenance['xen:version']} (hil@hil)" in ns
    junit = (run_dir / "junit.xml").read_text()
    assert f'name="xen:config_sha256" value="{provenance["xen:config_sha256"]}"' in junit


def observations(case_dirs: dict[str, Path]) -> dict[str, tuple[list[str], ProbeTranscript]]:
    """Per scenario: Xen's FF-A lines and the probe's lines as a check compares them."""
    out = {}
    for scenario in load_scenarios(names=EQUALITY_SCENARIOS):
        observed = observe(parse_captures(case_dirs[scenario.name], ("ns",)), "ns")
        out[scenario.name] = (observed_text(observed, scenario.probe_plan()), observed.transcript)
    return out


@pytest.mark.parametrize("name", list(BOARDS))
def test_the_virtual_board_shows_what_real_xen_shows(
    real_run: RealRun, tmp_path: Path, name: str
) -> None:
    profile, vcpus = BOARDS[name]["xen_profile"], dom0_vcpus(name)
    virtual = {"virtual0": {"xen_profile": profile, "xen_dom0_vcpus": vcpus}}
    lab = write_lab(tmp_path, virtual)
    virtual_code, run_dir, _ = run(lab, *(f"--scenario={s}" for s in EQUALITY_SCENARIOS))
    assert virtual_code == 0

    seen = observations({s: real_run.case_dir(name, s) for s in EQUALITY_SCENARIOS})
    modelled = observations({s: run_dir / "virtual0" / s for s in EQUALITY_SCENARIOS})
    for scenario in EQUALITY_SCENARIOS:
        assert seen[scenario][0] == modelled[scenario][0], scenario
    # The own entry a v1.2 guest gets on 4.22 carries dom0's vCPU count: the board's, as booted.
    if profile == "xen-4.22":
        own = seen["guest-v1-2"][1].partinfo[1].reply.rx[48:52]
        assert own == bytes([0x01, 0x00, vcpus, 0x00])


def test_an_image_hil_built_works_prebuilt_without_xen_kconfig(
    real_run: RealRun, tmp_path: Path
) -> None:
    """xen-unstable's image (debug=y) as a lab's ``xen_image`` with no ``xen_kconfig``: hil
    reads how it was built from the image itself, so the oracle's options and the report's facts
    are those of the same Xen built from source, and it passes."""
    built = real_run.cases["xen-unstable", "guest-v1-2"]
    image = real_run.case_dir("xen-unstable", "guest-v1-2") / "bundle" / "xen"
    board = {**BOARDS["xen-unstable"], "name": "prebuilt", "xen_image": str(image)}
    del board["xen_src"]
    lines = [f"boards_dir = {toml_value(str(BOARDS_DIR))}", "[[board]]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in board.items()]
    (tmp_path / "lab.toml").write_text("\n".join(lines) + "\n")
    code, run_dir, cases = run(
        tmp_path / "lab.toml", "--scenario=guest-v1-2", "--scenario=count-64"
    )
    assert code == 0, {s: c["message"] for s, c in cases.items()}

    facts = cases["guest-v1-2"]["provenance"]
    for key in ("xen:version", "xen:config_sha256"):
        assert facts[key] == built["provenance"][key]
    assert facts["xen:source"].startswith("image-sha256:")
    bundle = run_dir / "prebuilt" / "guest-v1-2" / "bundle"
    assert json.loads((bundle / "bundle.json").read_text())["xen_options"]["debug"] is True
