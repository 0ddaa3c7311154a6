"""``hil diff`` and recordings on real Xen (../shared/xen) on the qemu-virt board: the same build
twice differs nowhere, 4.21.2 -> 4.22.0 shows the partition-info series, a one-printk patch shows
exactly that line, a stale patch is one line, and a recording pins a Xen.

Three scenarios keep it small: ``one-non-secure`` and ``several-non-secure`` drop SPs (bit-15
header and per-SP lines, counts the guest sees), ``all-secure`` drops none (nothing a partinfo
printk changes). Each review runs once per module and the tests read its JSON."""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from hil.cli import main
from tests.firmware.test_real_xen import XEN_SOURCES, real_lab, require_real_xen, run

pytestmark = [pytest.mark.qemu, pytest.mark.xen, pytest.mark.timeout(1200)]

SCENARIOS = ["one-non-secure", "several-non-secure", "all-secure"]
V421, V422 = "xen-4.21.2.tar.xz", "xen-4.22.0.tar.xz"
PARTINFO = "xen/arch/arm/tee/ffa_partinfo.c"
OLD = "ffa: Secure partition with id 0x%04x cannot be used"
NEW = "ffa: SP 0x%04x dropped: its id lacks bit 15"


def review(lab: Path, base: str, *head: str) -> tuple[int, dict[str, Any]]:
    argv = ["diff", "--lab", str(lab), "--board", "xen-4.22", "--base", base, *head, "-j", "2"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--json", *(f"--scenario={s}" for s in SCENARIOS)])
    data = json.loads(out.getvalue())
    # diff.json beside the captures is what --json printed.
    assert json.loads((Path(data["run_dir"]) / "diff.json").read_text()) == data
    return code, data


def reworded_patch(directory: Path) -> Path:
    """A plain -p1 diff of 4.22.0's ffa_partinfo.c rewording the dropped-SP printk."""
    with tarfile.open(XEN_SOURCES / V422) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(PARTINFO))
        old = tar.extractfile(member).read().decode().splitlines(keepends=True)  # type: ignore[union-attr]
    assert sum(OLD in line for line in old) == 1
    new = [line.replace(OLD, NEW) for line in old]
    patch = directory / "reword.patch"
    patch.write_text("".join(difflib.unified_diff(old, new, f"a/{PARTINFO}", f"b/{PARTINFO}")))
    return patch


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_real_xen()
    return real_lab(tmp_path_factory.mktemp("diff"), "xen-4.22")


@pytest.fixture(scope="module")
def reviews(lab: Path) -> dict[str, tuple[int, dict[str, Any]]]:
    v421, v422 = str(XEN_SOURCES / V421), str(XEN_SOURCES / V422)
    return {
        "same": review(lab, v422, "--head", v422),
        "release": review(lab, v421, "--head", v422),
        "patch": review(lab, v422, "--head-patch", str(reworded_patch(lab.parent))),
    }


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in data["scenarios"]}


def test_the_same_build_twice_differs_nowhere(reviews: dict) -> None:
    code, data = reviews["same"]
    assert code == 0
    assert [(s["name"], s["status"]) for s in data["scenarios"]] == [(n, "same") for n in SCENARIOS]
    assert data["base"]["xen:image_sha256"] == data["head"]["xen:image_sha256"]


def test_4_21_to_4_22_shows_the_partition_info_series(reviews: dict) -> None:
    code, data = reviews["release"]
    assert code == 1
    assert (data["base"]["profile"], data["head"]["profile"]) == ("xen-4.21", "xen-4.22")
    scenarios = by_name(data)
    assert all(s["differs"] for s in scenarios.values())
    one = scenarios["one-non-secure"]
    assert "(XEN) ARM FF-A Mediator version 1.1" in one["xen"]["removed"]
    assert "(XEN) ARM FF-A Mediator version 1.2" in one["xen"]["added"]
    # The bit-15 header: 4.21 prints it with each dropped SP (three here), 4.22 once.
    several = scenarios["several-non-secure"]
    header = "(XEN) ffa: Firmware is not using bit 15 convention for IDs !!"
    assert several["xen"]["removed"].count(header) == 2 and header not in several["xen"]["added"]
    # The dropped SP is no longer counted: the Nil-UUID count query says 2 on 4.21, 1 on 4.22.
    count = "HILPROBE partinfo q=0 uuid=00000000-0000-0000-0000-000000000000 flags=0x00000001"
    assert f"{count} w0=0x84000061 w2=0x00000002 w3=0x00000018" in one["guest"]["removed"]
    assert f"{count} w0=0x84000061 w2=0x00000001 w3=0x00000000" in one["guest"]["added"]
    # Each side passes its own release's profile.
    verdicts = one["verdicts"]
    assert (verdicts["base"]["verdict"], verdicts["head"]["verdict"]) == ("pass", "pass")


def test_a_reworded_printk_is_exactly_that_line_where_it_is_printed(reviews: dict) -> None:
    code, data = reviews["patch"]
    assert code == 1
    assert data["head"]["kind"] == "patched" and data["head"]["patches"][0]["patch"] == 1
    scenarios = by_name(data)
    one = scenarios["one-non-secure"]
    assert one["xen"] == {
        "removed": ["(XEN) ffa: Secure partition with id 0x0042 cannot be used"],
        "added": ["(XEN) ffa: SP 0x0042 dropped: its id lacks bit 15"],
    }
    assert one["guest"] == {"removed": [], "added": []}
    several = scenarios["several-non-secure"]
    assert len(several["xen"]["removed"]) == len(several["xen"]["added"]) == 3
    assert several["guest"] == {"removed": [], "added": []}
    # No SP is dropped there: nothing prints the line, nothing differs.
    assert scenarios["all-secure"]["status"] == "same"


def test_a_patch_that_does_not_apply_is_one_line_and_exit_2(
    lab: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patch = lab.parent / "stale.patch"
    patch.write_text(
        f"--- a/{PARTINFO}\n+++ b/{PARTINFO}\n@@ -1,3 +1,3 @@\n-no such line\n+a line\n ctx\n ctx\n"
    )
    argv = ["diff", "--lab", str(lab), "--board", "xen-4.22", "--base", str(XEN_SOURCES / V422)]
    code = main([*argv, "--head-patch", str(patch)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"hil: error: {patch}: does not apply: {PARTINFO} hunk #1 (@@ -1,3 +1,3 @@)\n"


def test_a_recording_pins_a_xen(lab: Path, tmp_path: Path) -> None:
    golden = tmp_path / "golden"
    scenarios = [f"--scenario={s}" for s in SCENARIOS]
    code, _, _ = run(lab, *scenarios, "--record", str(golden))
    assert code == 0 and sorted(p.name for p in golden.iterdir()) == sorted(
        [*(f"{s}.json" for s in SCENARIOS), "recording.json"]
    )

    # Fewer boots from here on: two scenarios pass on the recorded Xen, one fails on another.
    same = real_lab(tmp_path / "same", "xen-4.22", expect=f"recorded:{golden}")
    code, _, cases = run(same, *scenarios[:2])
    assert code == 0
    assert {c["verdict"] for c in cases.values()} == {"pass"}
    assert all(c["expected_profile"].startswith("recorded:") for c in cases.values())

    older = real_lab(tmp_path / "older", "xen-4.21", expect=f"recorded:{golden}")
    code, _, cases = run(older, scenarios[0])
    assert code == 1
    diff = cases["one-non-secure"]["diff"]
    assert diff[0].startswith("--- expected (recorded:") and diff[1] == "+++ observed"
    assert "-(XEN) ARM FF-A Mediator version 1.2" in diff
    assert "+(XEN) ARM FF-A Mediator version 1.1" in diff


def test_a_side_that_never_boots_is_not_compared_and_exit_3(tmp_path: Path) -> None:
    # The head is "built" but is no Xen: TF-A hands over to it and nothing more is printed.
    # Short stage timeouts keep the two failed boots quick.
    lab = real_lab(tmp_path, "xen-4.22", timeouts={"xen": 8})
    not_xen = tmp_path / "not-xen.bin"
    not_xen.write_bytes(b"\0" * 4096)
    argv = ["diff", "--lab", str(lab), "--board", "xen-4.22", "--base", str(XEN_SOURCES / V422)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--head", str(not_xen), "--scenario=all-secure", "--json", "-j", "2"])
    (scenario,) = json.loads(out.getvalue())["scenarios"]
    assert code == 3
    assert (scenario["status"], scenario["differs"], scenario["compared"]) == (
        "not compared",
        False,
        False,
    )
    assert scenario["verdicts"]["head"]["verdict"] == "infra_error"
    assert scenario["verdicts"]["base"]["verdict"] == "pass"
